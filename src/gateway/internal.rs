//! Signed calls to a worker's internal API, and relaying its answers.
//!
//! [`Call`] holds what one user request sends to whichever workers it
//! asks: the lookup's path and query and the fill's body are built once,
//! not once per worker tried (the lookup's only if a lookup is made).

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use axum::response::Response;
use bytes::Bytes;
use http_body_util::Full;
use url::Url;

use super::worker_client::{ClientError, WorkerAnswer};
use super::Gateway;
use crate::cluster::auth;
use crate::cluster::keys::ClusterKeys;
use crate::cluster::membership::Member;
use crate::protocol::header::{CLUSTER_AUTH, RELAYED, X_REQUEST_ID, X_UNREACHABLE_WORKERS};
use crate::protocol::{Product, RequestId, LOOKUP_PATH};

/// Deadline for a cache lookup: it never touches an origin.
pub(super) const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a worker did not answer; the gateway then tries the next one.
#[derive(Debug, thiserror::Error)]
pub(super) enum Unreachable {
    /// Refused, reset, timed out, cut off...: the message names the cause.
    #[error(transparent)]
    Transport(#[from] ClientError),
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
    ) -> Result<WorkerAnswer, Unreachable> {
        let uri = self.gw.fill_urls.get(worker)?;
        let body = self.fill_body.clone();
        let timeout = self.gw.fill_timeout;
        let mut req = signed(self.keys, Method::POST, uri, body, self.request_id, timeout);
        if let Some(names) = passed_over {
            req = req.header(X_UNREACHABLE_WORKERS, names.clone());
        }
        send(self.gw, req).await
    }

    /// `GET /v1/image`: the cached image or 404, never an origin fetch.
    /// Its latency feeds the hedge delay. The future owns what it needs,
    /// so it can outlive the user request (a probe that keeps watching).
    pub fn lookup(
        &self,
        worker: &Member,
    ) -> impl Future<Output = Result<WorkerAnswer, Unreachable>> + Send + 'static {
        let uri = endpoint(worker, self.lookup_target());
        let gw = Arc::clone(self.gw);
        let keys = self.keys.clone();
        let request_id = self.request_id.clone();
        let name = worker.name.clone();
        async move {
            let started = Instant::now();
            let resp = send(
                &gw,
                signed(
                    &keys,
                    Method::GET,
                    uri?,
                    Bytes::new(),
                    &request_id,
                    LOOKUP_TIMEOUT,
                ),
            )
            .await?;
            gw.hedge_delay.observe(started.elapsed());
            gw.outliers.heard_from(&name, started);
            Ok(resp)
        }
    }
}

/// `http://<worker><target>`, `target` being a path and query.
pub(super) fn endpoint(worker: &Member, target: &str) -> Result<Uri, Unreachable> {
    format!("http://{}{target}", worker.http_addr)
        .parse()
        .map_err(|_| Unreachable::BadAddress(worker.http_addr.to_string()))
}

/// One signed internal request and its deadline, ready to send.
pub(super) struct Outgoing {
    request: Request<Full<Bytes>>,
    deadline: Duration,
}

impl Outgoing {
    /// Adds a header (one the signature does not cover).
    pub fn header(mut self, name: &'static str, value: HeaderValue) -> Outgoing {
        self.request.headers_mut().insert(name, value);
        self
    }
}

/// Signs a request to a worker (see [`auth`]); `timeout` covers its whole
/// answer.
pub(super) fn signed(
    keys: &ClusterKeys,
    method: Method,
    uri: Uri,
    body: Bytes,
    request_id: &RequestId,
    timeout: Duration,
) -> Outgoing {
    // The path and the query as sent.
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    let signature = auth::sign(
        keys,
        method.as_str(),
        path_and_query,
        &body,
        auth::unix_now(),
    );
    let has_body = !body.is_empty();
    let mut request = Request::new(Full::new(body));
    let headers = request.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&signature) {
        headers.insert(CLUSTER_AUTH, v);
    }
    // Request ids are checked where they enter (see `RequestId`); one that
    // is not a header value is simply not passed on.
    if let Ok(v) = HeaderValue::from_str(&request_id.0) {
        headers.insert(X_REQUEST_ID, v);
    }
    if has_body {
        headers.insert("content-type", HeaderValue::from_static("application/json"));
    }
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    Outgoing {
        request,
        deadline: timeout,
    }
}

/// Sends one internal request and reads its answer; a 401 is an error (our
/// credentials).
pub(super) async fn send(gw: &Gateway, req: Outgoing) -> Result<WorkerAnswer, Unreachable> {
    let answer = gw.client.send(req.request, req.deadline).await?;
    if answer.status == StatusCode::UNAUTHORIZED {
        return Err(Unreachable::Unauthorized);
    }
    Ok(answer)
}

/// Turns a worker's (whole) answer into ours: a worker dying mid-answer
/// was already a failover, never a truncated image.
pub(super) fn relay(answer: WorkerAnswer) -> Response {
    // Only the relayed headers are kept (values share the answer's bytes).
    let mut headers = HeaderMap::with_capacity(RELAYED.len());
    for name in RELAYED {
        if let Some(v) = answer.headers.get(name) {
            headers.insert(HeaderName::from_static(name), v.clone());
        }
    }
    let mut out = Response::new(Body::from(answer.body));
    *out.status_mut() = answer.status;
    *out.headers_mut() = headers;
    out
}
