//! The gateway's HTTP client for the workers' internal API.
//!
//! Every image a gateway forwards costs one internal request, so this
//! client is on the gateway's hot path. It is hyper-util's pooled HTTP/1
//! client called directly: reqwest (which wraps the same client, and which
//! the workers still use for origins, where its redirect policy and
//! filtering resolver matter) spent about 45 k instructions per forwarded
//! request in its own layers (request builder, redirect bookkeeping,
//! URL-to-URI conversion, header copies) against 13 k for hyper-util's
//! `send_request` (callgrind, issue 9). Workers are addressed by IP and
//! port from gossip, never redirect, and speak plain HTTP/1.1 on the
//! cluster network, so none of those layers does anything for us here.
//!
//! A request's deadline covers its whole answer, body included: a worker
//! that stops half-way through an image is a failure to fail over from,
//! not a truncated image, so answers are read whole before they are
//! returned.

use std::time::Duration;

use axum::http::{HeaderMap, Request, StatusCode};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::error_chain::one_line;

/// Time to open a connection to a worker: workers are on the cluster's
/// network, so a connection that takes longer is to a worker that is gone.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Idle connections to a worker are closed after this long.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why an internal request got no whole answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Not sent, or no answer head: refused, reset, connect timeout... The
    /// message names the cause, not only "client error (Connect)".
    #[error("{}", one_line(.0))]
    Send(#[from] hyper_util::client::legacy::Error),
    /// The head came but the body broke off.
    #[error("reading the answer: {}", one_line(.0))]
    Body(#[source] hyper::Error),
    /// No whole answer within the request's deadline.
    #[error("no answer within {0:?}")]
    Deadline(Duration),
}

/// A worker's whole answer.
#[derive(Debug)]
pub struct WorkerAnswer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Pooled keep-alive connections to the workers.
#[derive(Clone)]
pub struct WorkerClient {
    inner: Client<HttpConnector, Full<Bytes>>,
}

impl Default for WorkerClient {
    fn default() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        let inner = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .build(connector);
        WorkerClient { inner }
    }
}

impl WorkerClient {
    /// Sends `req` (an absolute `http://` URI) and reads its whole answer
    /// within `deadline`.
    pub async fn send(
        &self,
        req: Request<Full<Bytes>>,
        deadline: Duration,
    ) -> Result<WorkerAnswer, ClientError> {
        let exchange = async {
            let (head, body) = self.inner.request(req).await?.into_parts();
            let body = body.collect().await.map_err(ClientError::Body)?.to_bytes();
            Ok(WorkerAnswer {
                status: head.status,
                headers: head.headers,
                body,
            })
        };
        tokio::time::timeout(deadline, exchange)
            .await
            .map_err(|_| ClientError::Deadline(deadline))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn get(port: u16) -> Request<Full<Bytes>> {
        Request::get(format!("http://127.0.0.1:{port}/v1/image"))
            .body(Full::new(Bytes::new()))
            .expect("a valid request")
    }

    /// `GET /v1/image` on `port`, within `deadline`.
    async fn ask(port: u16, deadline: Duration) -> Result<WorkerAnswer, ClientError> {
        WorkerClient::default().send(get(port), deadline).await
    }

    /// A server that answers one request with `head` then `body`, then
    /// holds the connection open for `hold`.
    async fn server(head: &'static str, body: &'static [u8], hold: Duration) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.expect("accept");
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf).await;
            let _ = conn.write_all(head.as_bytes()).await;
            let _ = conn.write_all(body).await;
            tokio::time::sleep(hold).await;
        });
        port
    }

    #[tokio::test]
    async fn a_whole_answer_is_returned_with_status_headers_and_body() {
        let port = server(
            "HTTP/1.1 404 Not Found\r\ncontent-length: 5\r\nx-cache: MISS\r\n\r\n",
            b"gone!",
            Duration::ZERO,
        )
        .await;
        let answer = ask(port, Duration::from_secs(5)).await.expect("an answer");
        assert_eq!(answer.status, StatusCode::NOT_FOUND);
        assert_eq!(answer.headers["x-cache"], "MISS");
        assert_eq!(&answer.body[..], b"gone!");
    }

    #[tokio::test]
    async fn a_body_that_stops_half_way_misses_the_deadline() {
        // 10 bytes promised, 3 sent, connection held open.
        let port = server(
            "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n",
            b"abc",
            Duration::from_secs(5),
        )
        .await;
        let deadline = Duration::from_millis(300);
        let err = ask(port, deadline).await.expect_err("no whole answer");
        assert!(
            matches!(err, ClientError::Deadline(d) if d == deadline),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_body_cut_off_by_the_worker_is_an_error_not_a_short_image() {
        let port = server(
            "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n",
            b"abc",
            Duration::ZERO,
        )
        .await;
        let err = ask(port, Duration::from_secs(5))
            .await
            .expect_err("a cut-off body");
        assert!(matches!(err, ClientError::Body(_)), "{err}");
    }

    #[tokio::test]
    async fn a_refused_connection_names_the_cause() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        drop(listener);
        let err = ask(port, Duration::from_secs(5))
            .await
            .expect_err("nothing listens");
        assert!(err.to_string().contains("refused"), "{err}");
    }
}
