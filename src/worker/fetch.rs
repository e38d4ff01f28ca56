//! The worker's origin fetcher: downloads one image from a third-party
//! origin, safely.
//!
//! "Safely" means the URL comes from an untrusted user and the origin is an
//! untrusted server, so:
//! - only `http`/`https`, no credentials in URLs;
//! - every address dialled passes the [`AddressPolicy`] (literal IPs checked
//!   here, names checked by [`GuardedResolver`] at connect time, so DNS
//!   rebinding does not help);
//! - redirects are followed by this code, one hop at a time, each hop
//!   re-validated, up to a fixed count;
//! - the whole fetch (all hops and the body) has one deadline;
//! - the body is capped while it streams, so a huge or endless response
//!   costs at most `max_bytes` of memory;
//! - nothing identifying leaks to the origin: no cookies, no auth, no
//!   Referer, a fixed User-Agent, no proxy.

use std::sync::{Arc, Once};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{redirect, StatusCode};
use url::{Host, Url};

use crate::error_chain::one_line;

use super::netguard::{find_host_blocked, AddressPolicy, GuardedResolver};
use crate::protocol::{check_source_url, SourceUrlError};

/// User-Agent sent to origins: fixed, so it identifies the software and
/// nothing about the user who asked for the image.
pub const USER_AGENT: &str = concat!("img-proxy/", env!("CARGO_PKG_VERSION"));

/// Upper bound on establishing a TCP (and TLS) connection, so one black-holed
/// address does not eat a whole fetch's budget before other addresses of the
/// same host are tried. Capped by the fetch timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest buffer pre-allocated from a declared Content-Length; anything
/// bigger grows as bytes actually arrive, so a lying header cannot make us
/// allocate up front.
const MAX_PREALLOC: u64 = 1 << 20;

static CRYPTO_PROVIDER: Once = Once::new();

/// Installs rustls' `ring` crypto provider as the process default. reqwest
/// is built without a bundled provider and panics when building a client if
/// none is installed; this is idempotent and tolerates another part of the
/// process having installed one first. [`OriginClient::new`] calls it.
pub fn install_crypto_provider() {
    CRYPTO_PROVIDER.call_once(|| {
        // Err means a provider is already installed: exactly what we want.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Limits for fetching from origins; the worker builds it from its
/// configuration once at start-up.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// Largest body accepted, in bytes. Larger responses fail with
    /// [`FetchError::TooLarge`] without being read further.
    pub max_bytes: u64,
    /// Deadline for the whole fetch: every redirect hop, connect, headers
    /// and body.
    pub timeout: Duration,
    /// How many redirects are followed before giving up (0 = none).
    pub max_redirects: u32,
    /// Networks exempt from the public-address rule
    /// (`ALLOWED_SOURCE_NETWORKS`).
    pub allowed_networks: Vec<ipnet::IpNet>,
}

/// A successfully fetched origin response, ready for the image pipeline.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The complete body, at most `max_bytes` long.
    pub body: Bytes,
    /// The origin's `Content-Type`, if present and readable. Advisory only:
    /// the pipeline sniffs the real format.
    pub content_type: Option<String>,
    /// The URL the body came from after redirects, for logs and debugging.
    pub final_url: Url,
    /// The origin's validators, kept for revalidating the entry later.
    pub validators: Validators,
}

/// The origin's `ETag` and `Last-Modified` for one image: what a
/// revalidation sends back as `If-None-Match` / `If-Modified-Since`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

impl Validators {
    /// Reads them from an origin answer's headers (unreadable ones are
    /// dropped: a revalidation without them is a plain fetch).
    fn from_headers(headers: &HeaderMap) -> Validators {
        let text = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        Validators {
            etag: text(header::ETAG),
            last_modified: text(header::LAST_MODIFIED),
        }
    }

    /// Whether there is anything to make a request conditional with.
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

/// The answer to a conditional fetch ([`OriginClient::fetch_if_changed`]).
#[derive(Debug, Clone)]
pub enum Conditional {
    /// 304: what we hold is current; the origin's (possibly new)
    /// validators.
    NotModified(Validators),
    /// A full answer: the image may or may not have changed.
    Changed(Fetched),
}

/// Why a fetch failed. Each variant maps to one HTTP status the worker
/// answers with, and to one metric label ([`FetchError::kind`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The URL is not acceptable to fetch at all (bad scheme, no host,
    /// credentials). The client's fault: 400.
    #[error(transparent)]
    InvalidUrl(#[from] SourceUrlError),
    /// The URL, its DNS answer, or a redirect leads to an address the policy
    /// refuses: 403.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The origin answered 404 or 410: 404.
    #[error("origin has no such image")]
    NotFound,
    /// The body (declared or streamed) exceeds `max_bytes`: 422.
    #[error("image is larger than the {limit}-byte limit")]
    TooLarge {
        /// The configured `max_bytes`.
        limit: u64,
    },
    /// The origin failed: unreachable, TLS error, bad or too many
    /// redirects, an unexpected status: 502.
    #[error("origin error: {0}")]
    Upstream(String),
    /// The whole fetch exceeded the configured timeout: 504.
    #[error("origin fetch timed out")]
    Timeout,
}

impl FetchError {
    /// Short stable label for metrics and structured logs.
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::InvalidUrl(_) => "invalid_url",
            FetchError::Forbidden(_) => "forbidden",
            FetchError::NotFound => "not_found",
            FetchError::TooLarge { .. } => "too_large",
            FetchError::Upstream(_) => "upstream",
            FetchError::Timeout => "timeout",
        }
    }
}

/// The HTTP client used for every origin fetch. Holds one connection pool
/// and resolver for the whole worker; cheap to clone (all shared).
#[derive(Debug, Clone)]
pub struct OriginClient {
    client: reqwest::Client,
    policy: Arc<AddressPolicy>,
    cfg: Arc<FetchConfig>,
}

impl OriginClient {
    /// Builds the client. Installs the rustls crypto provider if needed.
    /// Fails (as [`FetchError::Upstream`], the only fitting variant) only if
    /// the TLS stack cannot be set up, which is a start-up problem.
    pub fn new(cfg: FetchConfig) -> Result<OriginClient, FetchError> {
        install_crypto_provider();
        let policy = AddressPolicy::new(cfg.allowed_networks.clone());
        let resolver = GuardedResolver::new(policy.clone());

        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static("image/*"));

        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(redirect::Policy::none())
            .referer(false)
            .user_agent(USER_AGENT)
            .default_headers(headers)
            .dns_resolver(resolver)
            .connect_timeout(CONNECT_TIMEOUT.min(cfg.timeout))
            .build()
            .map_err(|e| {
                FetchError::Upstream(format!("cannot build HTTP client: {}", one_line(&e)))
            })?;

        Ok(OriginClient {
            client,
            policy: Arc::new(policy),
            cfg: Arc::new(cfg),
        })
    }

    /// Fetches `url`, following redirects, within the configured deadline
    /// and size limit. See the module docs for the safety rules applied.
    pub async fn fetch(&self, url: &Url) -> Result<Fetched, FetchError> {
        match self.fetch_if_changed(url, &Validators::default()).await? {
            Conditional::Changed(fetched) => Ok(fetched),
            // Only a conditional request may be answered 304.
            Conditional::NotModified(_) => Err(FetchError::Upstream(
                "origin answered 304 to an unconditional request".to_owned(),
            )),
        }
    }

    /// [`OriginClient::fetch`], made conditional on `known` (`If-None-Match`,
    /// `If-Modified-Since`) when it holds validators: the revalidation of a
    /// cached image. The same rules apply (address guard, redirects,
    /// deadline, size cap).
    pub async fn fetch_if_changed(
        &self,
        url: &Url,
        known: &Validators,
    ) -> Result<Conditional, FetchError> {
        match tokio::time::timeout(self.cfg.timeout, self.fetch_inner(url, known)).await {
            Ok(result) => result,
            Err(_elapsed) => Err(FetchError::Timeout),
        }
    }

    /// One GET with the conditional headers `known` calls for.
    async fn send(&self, url: &Url, known: &Validators) -> Result<reqwest::Response, FetchError> {
        let mut req = self.client.get(url.clone());
        if let Some(etag) = &known.etag {
            req = req.header(header::IF_NONE_MATCH, etag);
        }
        if let Some(date) = &known.last_modified {
            req = req.header(header::IF_MODIFIED_SINCE, date);
        }
        req.send().await.map_err(|e| map_send_error(&e))
    }

    async fn fetch_inner(&self, url: &Url, known: &Validators) -> Result<Conditional, FetchError> {
        self.check_url(url)?;
        let mut current = url.clone();
        let mut hops: u32 = 0;
        loop {
            let resp = self.send(&current, known).await?;
            let status = resp.status();
            if status == StatusCode::NOT_MODIFIED && !known.is_empty() {
                return Ok(Conditional::NotModified(Validators::from_headers(
                    resp.headers(),
                )));
            }

            if is_followed_redirect(status) {
                let next = redirect_target(&current, status, resp.headers())?;
                drop(resp);
                if hops >= self.cfg.max_redirects {
                    return Err(FetchError::Upstream(format!(
                        "too many redirects (limit {})",
                        self.cfg.max_redirects
                    )));
                }
                hops += 1;
                match self.check_url(&next) {
                    Ok(()) => {}
                    Err(FetchError::InvalidUrl(why)) => {
                        return Err(FetchError::Upstream(format!(
                            "redirect to unusable URL: {why}"
                        )))
                    }
                    Err(FetchError::Forbidden(why)) => {
                        return Err(FetchError::Forbidden(format!("redirect target: {why}")))
                    }
                    Err(other) => return Err(other),
                }
                tracing::debug!(from = %current, to = %next, hop = hops, "following redirect");
                current = next;
                continue;
            }

            if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
                return Err(FetchError::NotFound);
            }
            if status != StatusCode::OK && status != StatusCode::NON_AUTHORITATIVE_INFORMATION {
                return Err(FetchError::Upstream(format!("origin answered {status}")));
            }

            return self
                .read_body(resp, current)
                .await
                .map(Conditional::Changed);
        }
    }

    async fn read_body(
        &self,
        mut resp: reqwest::Response,
        final_url: Url,
    ) -> Result<Fetched, FetchError> {
        let limit = self.cfg.max_bytes;
        let declared = resp.content_length();
        if declared.is_some_and(|len| len > limit) {
            return Err(FetchError::TooLarge { limit });
        }
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let validators = Validators::from_headers(resp.headers());

        let prealloc = declared.unwrap_or(0).min(limit).min(MAX_PREALLOC);
        let mut buf = BytesMut::with_capacity(usize::try_from(prealloc).unwrap_or(0));
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| FetchError::Upstream(format!("reading body failed: {}", one_line(&e))))?
        {
            // u64 arithmetic: a usize length always fits on supported targets.
            let total = buf.len() as u64 + chunk.len() as u64;
            if total > limit {
                return Err(FetchError::TooLarge { limit });
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(Fetched {
            body: buf.freeze(),
            content_type,
            final_url,
            validators,
        })
    }

    /// Validates a URL before any connection: the source-URL rules of
    /// [`check_source_url`], and literal IP hosts against the policy (reqwest never resolves
    /// those, so the resolver cannot catch them).
    fn check_url(&self, url: &Url) -> Result<(), FetchError> {
        check_source_url(url)?;
        let ip = match url.host() {
            Some(Host::Ipv4(v4)) => std::net::IpAddr::V4(v4),
            Some(Host::Ipv6(v6)) => std::net::IpAddr::V6(v6),
            Some(Host::Domain(_)) | None => return Ok(()),
        };
        self.policy
            .check(ip)
            .map_err(|blocked| FetchError::Forbidden(blocked.to_string()))
    }
}

/// Statuses we follow. 300 (no single target), 304 (an answer to a
/// conditional request, see [`Conditional`]) and 305/306 (obsolete) are
/// not redirects for us.
fn is_followed_redirect(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::MOVED_PERMANENTLY
            | StatusCode::FOUND
            | StatusCode::SEE_OTHER
            | StatusCode::TEMPORARY_REDIRECT
            | StatusCode::PERMANENT_REDIRECT
    )
}

/// Resolves a redirect's `Location` (possibly relative) against the
/// current URL.
fn redirect_target(
    current: &Url,
    status: StatusCode,
    headers: &HeaderMap,
) -> Result<Url, FetchError> {
    let location = headers
        .get(header::LOCATION)
        .ok_or_else(|| FetchError::Upstream(format!("redirect {status} without Location")))?;
    let location = location
        .to_str()
        .map_err(|_| FetchError::Upstream("redirect Location is not valid text".to_owned()))?;
    current
        .join(location)
        .map_err(|e| FetchError::Upstream(format!("bad redirect Location {location:?}: {e}")))
}

/// Maps a failure to get response headers. A policy refusal anywhere in the
/// error chain (from [`GuardedResolver`]) becomes Forbidden; everything else
/// is the origin's problem.
fn map_send_error(err: &reqwest::Error) -> FetchError {
    if let Some(blocked) = find_host_blocked(err) {
        return FetchError::Forbidden(blocked.to_string());
    }
    if err.is_timeout() {
        return FetchError::Upstream(format!("connecting to origin timed out: {}", one_line(err)));
    }
    FetchError::Upstream(one_line(err))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    use axum::body::Body;
    use axum::extract::{Path, Query};
    use axum::http::{HeaderMap as AxHeaders, StatusCode as AxStatus};
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;
    use axum::serve::ListenerExt;
    use axum::Router;
    use futures::StreamExt;

    /// A throwaway origin on a loopback address that counts TCP connections.
    struct Origin {
        addr: SocketAddr,
        connections: Arc<AtomicUsize>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Origin {
        fn url(&self, path: &str) -> Url {
            parse(&format!("http://{}{}", self.addr, path))
        }

        fn connections(&self) -> usize {
            self.connections.load(Ordering::SeqCst)
        }
    }

    impl Drop for Origin {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    fn parse(s: &str) -> Url {
        match Url::parse(s) {
            Ok(u) => u,
            Err(e) => panic!("bad test URL {s}: {e}"),
        }
    }

    fn redirect(status: AxStatus, to: &str) -> Response {
        (status, [(header::LOCATION, to.to_owned())]).into_response()
    }

    /// The test origin's routes: one flat list of scenarios, longer than
    /// 80 lines on purpose.
    fn routes() -> Router {
        Router::new()
            .route(
                "/img",
                get(|| async { ([(header::CONTENT_TYPE, "image/png")], &b"\x89PNG fake"[..]) }),
            )
            .route("/missing", get(|| async { AxStatus::NOT_FOUND }))
            .route("/gone", get(|| async { AxStatus::GONE }))
            .route("/boom", get(|| async { AxStatus::INTERNAL_SERVER_ERROR }))
            .route("/teapot", get(|| async { AxStatus::IM_A_TEAPOT }))
            .route(
                "/chunked/{n}",
                get(|n: Path<usize>| async move {
                    let chunks = futures::stream::iter(0..n.0)
                        .map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![7u8; 1024])));
                    Body::from_stream(chunks)
                }),
            )
            .route("/declared", get(|| async { vec![1u8; 100 * 1024] }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    "late"
                }),
            )
            .route(
                "/stall",
                get(|| async {
                    let first = futures::stream::once(async {
                        Ok::<_, std::io::Error>(Bytes::from_static(b"partial"))
                    });
                    Body::from_stream(first.chain(futures::stream::pending()))
                }),
            )
            .route(
                "/hop/{n}",
                get(|n: Path<u32>| async move {
                    let status = match n.0 % 4 {
                        0 => AxStatus::FOUND,
                        1 => AxStatus::MOVED_PERMANENTLY,
                        2 => AxStatus::TEMPORARY_REDIRECT,
                        _ => AxStatus::PERMANENT_REDIRECT,
                    };
                    if n.0 == 0 {
                        redirect(AxStatus::SEE_OTHER, "../img")
                    } else {
                        redirect(status, &(n.0 - 1).to_string())
                    }
                }),
            )
            .route(
                "/loop",
                get(|| async { redirect(AxStatus::FOUND, "/loop") }),
            )
            .route("/noloc", get(|| async { AxStatus::FOUND }))
            .route(
                "/to",
                get(|q: Query<HashMap<String, String>>| async move {
                    let to = q.0.get("u").cloned().unwrap_or_default();
                    redirect(AxStatus::FOUND, &to)
                }),
            )
            .route(
                "/versioned",
                get(|h: AxHeaders| async move {
                    let etag = "\"v1\"";
                    if h.get(header::IF_NONE_MATCH).is_some_and(|v| v == etag) {
                        return (AxStatus::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
                    }
                    let headers = [
                        (header::ETAG, etag),
                        (header::LAST_MODIFIED, "Mon, 02 Jan 2006 15:04:05 GMT"),
                    ];
                    (headers, &b"\x89PNG fake"[..]).into_response()
                }),
            )
            .route(
                "/headers",
                get(|h: AxHeaders| async move {
                    let mut out = String::new();
                    for (name, value) in &h {
                        out.push_str(&format!("{}: {}\n", name, value.to_str().unwrap_or("?")));
                    }
                    out
                }),
            )
    }

    async fn start_origin(ip: &str) -> Origin {
        let listener = match tokio::net::TcpListener::bind((ip, 0)).await {
            Ok(l) => l,
            Err(e) => panic!("bind {ip}: {e}"),
        };
        let addr = match listener.local_addr() {
            Ok(a) => a,
            Err(e) => panic!("local_addr: {e}"),
        };
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        let listener = listener.tap_io(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, routes()).await;
        });
        Origin {
            addr,
            connections,
            task,
        }
    }

    fn client_with(
        allowed: &[&str],
        max_bytes: u64,
        timeout: Duration,
        max_redirects: u32,
    ) -> OriginClient {
        let allowed_networks = allowed
            .iter()
            .map(|s| match s.parse() {
                Ok(n) => n,
                Err(e) => panic!("bad network {s}: {e}"),
            })
            .collect();
        let cfg = FetchConfig {
            max_bytes,
            timeout,
            max_redirects,
            allowed_networks,
        };
        match OriginClient::new(cfg) {
            Ok(c) => c,
            Err(e) => panic!("client: {e}"),
        }
    }

    fn client(allowed: &[&str]) -> OriginClient {
        client_with(allowed, 64 * 1024, Duration::from_secs(10), 5)
    }

    async fn fetch_ok(c: &OriginClient, url: &Url) -> Fetched {
        match c.fetch(url).await {
            Ok(f) => f,
            Err(e) => panic!("fetch {url} failed: {e}"),
        }
    }

    async fn fetch_err(c: &OriginClient, url: &Url) -> FetchError {
        match c.fetch(url).await {
            Ok(f) => panic!(
                "fetch {url} unexpectedly succeeded ({} bytes)",
                f.body.len()
            ),
            Err(e) => e,
        }
    }

    #[tokio::test]
    async fn fetches_body_and_content_type() {
        let origin = start_origin("127.0.0.1").await;
        let c = client(&["127.0.0.1/32"]);
        let url = origin.url("/img");
        let f = fetch_ok(&c, &url).await;
        assert_eq!(&f.body[..], b"\x89PNG fake");
        assert_eq!(f.content_type.as_deref(), Some("image/png"));
        assert_eq!(f.final_url, url);
    }

    #[tokio::test]
    async fn a_conditional_fetch_with_the_current_etag_is_not_modified() {
        let origin = start_origin("127.0.0.1").await;
        let c = client(&["127.0.0.1/32"]);
        let url = origin.url("/versioned");
        let f = fetch_ok(&c, &url).await;
        assert_eq!(f.validators.etag.as_deref(), Some("\"v1\""));
        assert!(f.validators.last_modified.is_some());
        match c.fetch_if_changed(&url, &f.validators).await {
            Ok(Conditional::NotModified(v)) => assert_eq!(v.etag.as_deref(), Some("\"v1\"")),
            other => panic!("expected 304, got {other:?}"),
        }
        let old = Validators {
            etag: Some("\"v0\"".into()),
            last_modified: None,
        };
        match c.fetch_if_changed(&url, &old).await {
            Ok(Conditional::Changed(f)) => assert_eq!(&f.body[..], b"\x89PNG fake"),
            other => panic!("expected the full image, got {other:?}"),
        }
        // Without validators the request is plain: the full image.
        let plain = c.fetch_if_changed(&url, &Validators::default()).await;
        assert!(matches!(plain, Ok(Conditional::Changed(_))));
    }

    #[tokio::test]
    async fn localhost_works_when_its_address_is_allowed() {
        // Proves the name goes through the resolver and /etc/hosts.
        let origin = start_origin("127.0.0.1").await;
        let c = client(&["127.0.0.1/32"]);
        let url = parse(&format!("http://localhost:{}/img", origin.addr.port()));
        let f = fetch_ok(&c, &url).await;
        assert_eq!(&f.body[..], b"\x89PNG fake");
    }

    #[tokio::test]
    async fn not_found_and_gone_map_to_not_found() {
        let origin = start_origin("127.0.0.1").await;
        let c = client(&["127.0.0.1/32"]);
        assert_eq!(
            fetch_err(&c, &origin.url("/missing")).await,
            FetchError::NotFound
        );
        assert_eq!(
            fetch_err(&c, &origin.url("/gone")).await,
            FetchError::NotFound
        );
    }

    #[tokio::test]
    async fn other_error_statuses_are_upstream_with_status() {
        let origin = start_origin("127.0.0.1").await;
        let c = client(&["127.0.0.1/32"]);
        match fetch_err(&c, &origin.url("/boom")).await {
            FetchError::Upstream(msg) => assert!(msg.contains("500"), "{msg}"),
            other => panic!("expected Upstream, got {other:?}"),
        }
        match fetch_err(&c, &origin.url("/teapot")).await {
            FetchError::Upstream(msg) => assert!(msg.contains("418"), "{msg}"),
            other => panic!("expected Upstream, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn streamed_body_over_limit_is_too_large() {
        let origin = start_origin("127.0.0.1").await;
        let c = client_with(&["127.0.0.1/32"], 4096, Duration::from_secs(10), 5);
        assert_eq!(
            fetch_err(&c, &origin.url("/chunked/64")).await,
            FetchError::TooLarge { limit: 4096 }
        );
        assert_eq!(
            fetch_err(&c, &origin.url("/chunked/5")).await,
            FetchError::TooLarge { limit: 4096 }
        );
        // Exactly at the limit is fine.
        let f = fetch_ok(&c, &origin.url("/chunked/4")).await;
        assert_eq!(f.body.len(), 4096);
        let f = fetch_ok(&c, &origin.url("/chunked/2")).await;
        assert_eq!(f.body.len(), 2048);
    }

    #[tokio::test]
    async fn declared_length_over_limit_is_too_large() {
        let origin = start_origin("127.0.0.1").await;
        let c = client_with(&["127.0.0.1/32"], 4096, Duration::from_secs(10), 5);
        assert_eq!(
            fetch_err(&c, &origin.url("/declared")).await,
            FetchError::TooLarge { limit: 4096 }
        );
    }

    #[tokio::test]
    async fn slow_origin_times_out_on_time() {
        let origin = start_origin("127.0.0.1").await;
        let timeout = Duration::from_millis(500);
        let c = client_with(&["127.0.0.1/32"], 64 * 1024, timeout, 5);
        for path in ["/slow", "/stall"] {
            let started = Instant::now();
            assert_eq!(
                fetch_err(&c, &origin.url(path)).await,
                FetchError::Timeout,
                "{path}"
            );
            let took = started.elapsed();
            assert!(took >= timeout, "{path} took {took:?}");
            assert!(
                took < timeout + Duration::from_millis(1500),
                "{path} took {took:?}"
            );
        }
    }

    #[tokio::test]
    async fn follows_relative_redirect_chain() {
        let origin = start_origin("127.0.0.1").await;
        let c = client(&["127.0.0.1/32"]);
        // /hop/3 -> 2 -> 1 -> 0 -> ../img: four redirects.
        let f = fetch_ok(&c, &origin.url("/hop/3")).await;
        assert_eq!(&f.body[..], b"\x89PNG fake");
        assert_eq!(f.final_url, origin.url("/img"));
        // Absolute Location via /to.
        let target = origin.url("/img");
        let f = fetch_ok(&c, &origin.url(&format!("/to?u={target}"))).await;
        assert_eq!(f.final_url, target);
    }

    #[tokio::test]
    async fn too_many_redirects_is_upstream() {
        let origin = start_origin("127.0.0.1").await;
        let c = client_with(&["127.0.0.1/32"], 64 * 1024, Duration::from_secs(10), 3);
        // Needs four redirects; only three allowed.
        match fetch_err(&c, &origin.url("/hop/3")).await {
            FetchError::Upstream(msg) => assert!(msg.contains("too many redirects"), "{msg}"),
            other => panic!("expected Upstream, got {other:?}"),
        }
        assert!(matches!(
            fetch_err(&c, &origin.url("/loop")).await,
            FetchError::Upstream(_)
        ));
        let none = client_with(&["127.0.0.1/32"], 64 * 1024, Duration::from_secs(10), 0);
        assert!(matches!(
            fetch_err(&none, &origin.url("/hop/0")).await,
            FetchError::Upstream(_)
        ));
    }

    #[tokio::test]
    async fn bad_redirects_are_upstream() {
        let origin = start_origin("127.0.0.1").await;
        let c = client(&["127.0.0.1/32"]);
        match fetch_err(&c, &origin.url("/noloc")).await {
            FetchError::Upstream(msg) => assert!(msg.contains("without Location"), "{msg}"),
            other => panic!("expected Upstream, got {other:?}"),
        }
        for to in [
            "ftp://example.com/x",
            "http://user:pw@127.0.0.1/",
            "file:///etc/passwd",
        ] {
            match fetch_err(&c, &origin.url(&format!("/to?u={to}"))).await {
                FetchError::Upstream(msg) => assert!(msg.contains("redirect"), "{msg}"),
                other => panic!("{to}: expected Upstream, got {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn redirect_to_refused_literal_address_is_forbidden() {
        let origin = start_origin("127.0.0.1").await;
        let victim = start_origin("127.0.0.2").await;
        let c = client(&["127.0.0.1/32"]);
        let to = victim.url("/img");
        match fetch_err(&c, &origin.url(&format!("/to?u={to}"))).await {
            FetchError::Forbidden(msg) => assert!(msg.contains("127.0.0.2"), "{msg}"),
            other => panic!("expected Forbidden, got {other:?}"),
        }
        assert_eq!(victim.connections(), 0);
    }

    #[tokio::test]
    async fn redirect_to_localhost_is_forbidden_after_resolving() {
        // The allowed origin lives on 127.0.0.2; localhost -> 127.0.0.1 is not allowed.
        let origin = start_origin("127.0.0.2").await;
        let victim = start_origin("127.0.0.1").await;
        let c = client(&["127.0.0.2/32"]);
        let to = format!("http://localhost:{}/img", victim.addr.port());
        match fetch_err(&c, &origin.url(&format!("/to?u={to}"))).await {
            FetchError::Forbidden(msg) => assert!(msg.contains("localhost"), "{msg}"),
            other => panic!("expected Forbidden, got {other:?}"),
        }
        assert_eq!(victim.connections(), 0);
        assert!(origin.connections() >= 1);
    }

    #[tokio::test]
    async fn loopback_is_forbidden_without_exemption_in_every_spelling() {
        let victim = start_origin("127.0.0.1").await;
        let port = victim.addr.port();
        let c = client(&[]);
        for url in [
            format!("http://127.0.0.1:{port}/img"),
            format!("http://localhost:{port}/img"),
            format!("http://LOCALHOST.:{port}/img"),
            format!("http://[::ffff:127.0.0.1]:{port}/img"),
            format!("http://[::ffff:7f00:1]:{port}/img"),
            format!("http://2130706433:{port}/img"),
            format!("http://127.1:{port}/img"),
            format!("http://0x7f.0.0.1:{port}/img"),
            format!("http://0177.0.0.1:{port}/img"),
            format!("http://127.0.0.1.:{port}/img"),
            format!("http://[::1]:{port}/img"),
            format!("http://0.0.0.0:{port}/img"),
            format!("http://[::]:{port}/img"),
            format!("https://127.0.0.1:{port}/img"),
        ] {
            let url = parse(&url);
            match fetch_err(&c, &url).await {
                FetchError::Forbidden(_) => {}
                other => panic!("{url}: expected Forbidden, got {other:?}"),
            }
        }
        assert_eq!(victim.connections(), 0, "origin must never be contacted");
    }

    #[tokio::test]
    async fn non_http_and_credential_urls_are_invalid() {
        let victim = start_origin("127.0.0.1").await;
        let port = victim.addr.port();
        let c = client(&["127.0.0.1/32"]);
        for url in [
            "ftp://127.0.0.1/img".to_owned(),
            "file:///etc/passwd".to_owned(),
            "gopher://127.0.0.1:70/".to_owned(),
            "data:image/png;base64,AAAA".to_owned(),
            format!("http://user:pw@127.0.0.1:{port}/img"),
            format!("http://user@127.0.0.1:{port}/img"),
            format!("http://:pw@127.0.0.1:{port}/img"),
        ] {
            let url = parse(&url);
            match fetch_err(&c, &url).await {
                FetchError::InvalidUrl(_) => {}
                other => panic!("{url}: expected InvalidUrl, got {other:?}"),
            }
        }
        assert_eq!(victim.connections(), 0);
    }

    #[tokio::test]
    async fn sends_fixed_identity_and_nothing_else() {
        let origin = start_origin("127.0.0.1").await;
        let c = client(&["127.0.0.1/32"]);
        let direct = fetch_ok(&c, &origin.url("/headers")).await;
        let target = origin.url("/headers");
        let redirected = fetch_ok(&c, &origin.url(&format!("/to?u={target}"))).await;
        for f in [direct, redirected] {
            let text = String::from_utf8_lossy(&f.body).to_lowercase();
            assert!(
                text.contains(&format!("user-agent: {USER_AGENT}\n")),
                "{text}"
            );
            assert!(text.contains("accept: image/*\n"), "{text}");
            for banned in ["referer", "cookie", "authorization", "proxy-"] {
                assert!(!text.contains(banned), "{banned} in {text}");
            }
        }
    }

    #[tokio::test]
    async fn connection_refused_is_upstream() {
        let port = {
            let l = match tokio::net::TcpListener::bind(("127.0.0.1", 0)).await {
                Ok(l) => l,
                Err(e) => panic!("bind: {e}"),
            };
            match l.local_addr() {
                Ok(a) => a.port(),
                Err(e) => panic!("local_addr: {e}"),
            }
        };
        let c = client(&["127.0.0.1/32"]);
        let err = fetch_err(&c, &parse(&format!("http://127.0.0.1:{port}/img"))).await;
        assert!(matches!(err, FetchError::Upstream(_)), "{err:?}");
        assert!(!err.to_string().contains('\n'));
    }

    #[test]
    fn kinds_are_stable_labels() {
        let cases = [
            (
                FetchError::InvalidUrl(SourceUrlError::NoHost),
                "invalid_url",
            ),
            (FetchError::Forbidden(String::new()), "forbidden"),
            (FetchError::NotFound, "not_found"),
            (FetchError::TooLarge { limit: 1 }, "too_large"),
            (FetchError::Upstream(String::new()), "upstream"),
            (FetchError::Timeout, "timeout"),
        ];
        for (err, kind) in cases {
            assert_eq!(err.kind(), kind);
        }
    }

    #[test]
    fn client_is_cheap_to_clone_and_provider_install_is_idempotent() {
        install_crypto_provider();
        install_crypto_provider();
        let c = client(&[]);
        let _c2 = c.clone();
    }
}
