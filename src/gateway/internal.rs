//! Signed calls to a worker's internal API, and relaying its answers.
//!
//! [`Call`] holds what one user request sends to whichever workers it
//! asks: the lookup's path and query and the fill's body are built once,
//! not once per worker tried (the lookup's only if a lookup is made).

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use reqwest::Method;
use url::Url;

use super::Gateway;
use crate::cluster::auth;
use crate::cluster::keys::ClusterKeys;
use crate::cluster::membership::Member;
use crate::error_chain::one_line;
use crate::protocol::header::{CLUSTER_AUTH, RELAYED, X_REQUEST_ID, X_UNREACHABLE_WORKERS};
use crate::protocol::{Product, RequestId, LOOKUP_PATH};

/// Deadline for a cache lookup: it never touches an origin.
pub(super) const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a worker did not answer; the gateway then tries the next one.
#[derive(Debug, thiserror::Error)]
pub(super) enum Unreachable {
    /// Refused, reset, timed out...: the message names the cause, not
    /// only reqwest's "error sending request".
    #[error("{}", one_line(.0))]
    Transport(#[from] reqwest::Error),
    #[error("worker refused our credentials")]
    Unauthorized,
    #[error("worker address {0} does not form a URL")]
    BadAddress(String),
    /// Neither the request nor a cache lookup sent to check on the worker
    /// was answered in time: the worker is frozen or overloaded.
    #[error("no answer to a cache lookup within {0:?} (worker frozen or overloaded)")]
    Unresponsive(Duration),
    /// The probe shared by the requests waiting on this worker failed.
    #[error("probe failed: {0}")]
    Probe(Arc<String>),
}

/// One user request's calls to workers.
pub(super) struct Call<'a> {
    pub gw: &'a Arc<Gateway>,
    pub keys: &'a ClusterKeys,
    pub request_id: &'a RequestId,
    url: &'a Url,
    product: Product<'a>,
    /// `/v1/image?url=...&w=...`, made on the first hedge or probe (most
    /// requests are answered without either).
    lookup_target: OnceLock<String>,
    /// The JSON body of `POST /v1/cache`.
    fill_body: Bytes,
}

impl<'a> Call<'a> {
    pub fn new(
        gw: &'a Arc<Gateway>,
        keys: &'a ClusterKeys,
        request_id: &'a RequestId,
        url: &'a Url,
        product: Product<'a>,
    ) -> Call<'a> {
        let body = serde_json::to_vec(&product.fill_request(url)).unwrap_or_default();
        Call {
            gw,
            keys,
            request_id,
            url,
            product,
            lookup_target: OnceLock::new(),
            fill_body: Bytes::from(body),
        }
    }

    fn lookup_target(&self) -> &str {
        self.lookup_target.get_or_init(|| {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query.append_pair("url", self.url.as_str());
            for (k, v) in self.product.query() {
                query.append_pair(k, &v);
            }
            format!("{LOOKUP_PATH}?{}", query.finish())
        })
    }

    /// `POST /v1/cache`: the cached image, or fetched and cached now.
    /// `passed_over` names the workers ahead of this one in the URL's
    /// order that this gateway skips, so this one does not wait on them
    /// for a peer fill.
    pub async fn get_or_fill(
        &self,
        worker: &Member,
        passed_over: Option<&HeaderValue>,
    ) -> Result<reqwest::Response, Unreachable> {
        let url = self.gw.fill_urls.get(worker)?;
        let body = self.fill_body.clone();
        let timeout = self.gw.fill_timeout;
        let mut req = signed(
            self.gw,
            self.keys,
            Method::POST,
            url,
            body,
            self.request_id,
            timeout,
        );
        if let Some(names) = passed_over {
            req = req.header(X_UNREACHABLE_WORKERS, names.clone());
        }
        send(req).await
    }

    /// `GET /v1/image`: the cached image or 404, never an origin fetch.
    /// Its latency feeds the hedge delay. The future owns what it needs,
    /// so it can outlive the user request (a probe that keeps watching).
    pub fn lookup(
        &self,
        worker: &Member,
    ) -> impl Future<Output = Result<reqwest::Response, Unreachable>> + Send + 'static {
        let url = endpoint(worker, self.lookup_target());
        let gw = Arc::clone(self.gw);
        let keys = self.keys.clone();
        let request_id = self.request_id.clone();
        let name = worker.name.clone();
        async move {
            let started = Instant::now();
            let resp = send(signed(
                &gw,
                &keys,
                Method::GET,
                url?,
                Bytes::new(),
                &request_id,
                LOOKUP_TIMEOUT,
            ))
            .await?;
            gw.hedge_delay.observe(started.elapsed());
            gw.outliers.heard_from(&name, started);
            Ok(resp)
        }
    }
}

pub(super) fn endpoint(worker: &Member, target: &str) -> Result<Url, Unreachable> {
    Url::parse(&format!("http://{}{target}", worker.http_addr))
        .map_err(|_| Unreachable::BadAddress(worker.http_addr.to_string()))
}

/// One signed internal request, ready to send.
pub(super) fn signed(
    gw: &Gateway,
    keys: &ClusterKeys,
    method: Method,
    url: Url,
    body: Bytes,
    request_id: &RequestId,
    timeout: Duration,
) -> reqwest::RequestBuilder {
    // The path and the query as sent (our URLs have no fragment).
    let path_and_query = &url[url::Position::BeforePath..url::Position::AfterQuery];
    let signature = auth::sign(
        keys,
        method.as_str(),
        path_and_query,
        &body,
        auth::unix_now(),
    );
    let mut req = gw
        .client
        .request(method, url)
        .timeout(timeout)
        .header(CLUSTER_AUTH, signature)
        .header(X_REQUEST_ID, &request_id.0);
    if !body.is_empty() {
        req = req.header("content-type", "application/json").body(body);
    }
    req
}

/// Sends one internal request; a 401 is an error (our credentials).
pub(super) async fn send(req: reqwest::RequestBuilder) -> Result<reqwest::Response, Unreachable> {
    let resp = req.send().await?;
    if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
        return Err(Unreachable::Unauthorized);
    }
    Ok(resp)
}

/// Turns a worker's answer into ours, reading the whole body first so that
/// a worker dying mid-answer is a failover, not a truncated image.
pub(super) async fn relay(resp: reqwest::Response) -> Result<Response, Unreachable> {
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    // Only the relayed headers are kept (values share the answer's bytes).
    let mut headers = HeaderMap::with_capacity(RELAYED.len());
    for name in RELAYED {
        if let Some(v) = resp.headers().get(name) {
            headers.insert(HeaderName::from_static(name), v.clone());
        }
    }
    let body = resp.bytes().await?;
    let mut out = Response::new(Body::from(body));
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}
