//! The HTTP serve loop for client connections, in place of `axum::serve`.
//!
//! `axum::serve` has no deadline for a request head and no bound on open
//! connections, and on `EMFILE` it sleeps a whole second between accepts:
//! 1,100 clients sending one header line every 10 s were enough to make a
//! node with 1,024 descriptors stop answering. This loop accepts with hyper
//! (HTTP/1.1; HTTP/2 terminates at the load balancer) and, per connection:
//!
//! - registers it in [`Connections`], which caps the count and, at the
//!   cap, sheds the connection that has waited longest for a request head;
//! - closes it when its head does not arrive within `HEADER_READ_TIMEOUT`,
//!   or when it idles past `KEEP_ALIVE_TIMEOUT` between requests;
//! - bounds the request head to [`MAX_HEAD_BYTES`] and [`MAX_HEADERS`]
//!   (hyper answers 431, or 414 for a request line beyond the buffer);
//! - marks it busy from the moment its head is parsed until its answer's
//!   body has been written, so only waiting connections are ever shed.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::Router;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tower::ServiceExt;
use tracing::{debug, warn};

use super::connections::{CloseReason, Conn, Connections, Deadlines, Head, Next};

/// Largest request head (request line and headers) in bytes. Room for an
/// 8 KiB `url` even fully percent-encoded, so that an over-long `url` gets
/// its own 414 from the gateway.
pub const MAX_HEAD_BYTES: usize = 32 * 1024;

/// Most header fields in one request.
pub const MAX_HEADERS: usize = 64;

/// Listen backlog. Larger than the default 1,024 so that, while the node
/// sheds slow clients at its cap, a new client's handshake still finds room
/// in the accept queue instead of waiting for a SYN retransmission (1 s).
/// The kernel caps it at `net.core.somaxconn`.
const BACKLOG: u32 = 4096;

/// Pause after an accept failed for lack of descriptors, so the loop does
/// not spin while the shed connection closes.
const EMFILE_PAUSE: Duration = Duration::from_millis(5);

/// The answer to a connection accepted at the cap with nothing to shed.
const BUSY_ANSWER: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: 24\r\n\r\ntoo many open connections";

/// How a node serves its client connections.
#[derive(Debug, Clone, Copy)]
pub struct ServeConfig {
    pub deadlines: Deadlines,
}

/// Binds the client listener with [`BACKLOG`], `SO_REUSEADDR` and
/// [`defer_accept`] up to `header_read`.
pub fn bind(addr: SocketAddr, header_read: Duration) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let listener = socket.listen(BACKLOG)?;
    defer_accept(&listener, header_read)?;
    Ok(listener)
}

/// `TCP_DEFER_ACCEPT`: the kernel hands a connection to `accept` only once
/// its first data has arrived (or after `wait`). A connection that sends
/// nothing costs no descriptor, and at the cap every newcomer's first
/// bytes are already there to judge whether its request head is complete;
/// without it, a client could be judged in the microseconds between its
/// handshake and its request.
#[cfg(target_os = "linux")]
fn defer_accept(listener: &TcpListener, wait: Duration) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let secs = libc::c_int::try_from(wait.as_secs().max(1)).unwrap_or(libc::c_int::MAX);
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a live
    // c_int, on a descriptor the listener owns for the call's duration.
    let rc = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&secs as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Elsewhere connections are accepted at once; the cap's judgement of a
/// newcomer's head is then less accurate, nothing worse.
#[cfg(not(target_os = "linux"))]
fn defer_accept(_listener: &TcpListener, _wait: Duration) -> io::Result<()> {
    Ok(())
}

/// Serves `app` on `listener` until `stop` resolves, then lets open
/// connections finish their current request and returns when all are closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    connections: Arc<Connections>,
    cfg: ServeConfig,
    stop: impl Future<Output = ()>,
) {
    let (stopping_tx, stopping_rx) = watch::channel(false);
    // Every connection task holds a clone; `recv` returns None once all
    // have ended.
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let (stream, head) = if connections.at_cap() {
                        match peek_head(stream) {
                            Ok(peeked) => peeked,
                            Err(_) => continue,
                        }
                    } else {
                        (stream, Head::Incomplete)
                    };
                    let Some(registered) = connections.admit(Instant::now(), head) else {
                        refuse(stream, head, &connections);
                        continue;
                    };
                    let task = ConnTask {
                        app: app.clone(),
                        cfg,
                        connections: Arc::clone(&connections),
                        stopping: stopping_rx.clone(),
                        _alive: alive_tx.clone(),
                    };
                    tokio::spawn(task.run(stream, registered));
                }
                Err(e) => accept_failed(&e, &connections).await,
            },
        }
    }
    drop(listener);
    let _ = stopping_tx.send(true);
    drop(alive_tx);
    let _ = alive_rx.recv().await;
}

/// Whether the request head has already arrived whole (or filled the
/// head budget, which hyper then refuses with 431), looked at without
/// consuming it. Only at the cap, so the conversions cost nothing otherwise.
fn peek_head(stream: TcpStream) -> io::Result<(TcpStream, Head)> {
    let std_stream = stream.into_std()?;
    let complete =
        |buf: &[u8], n: usize| n == buf.len() || buf[..n].windows(4).any(|w| w == b"\r\n\r\n");
    // Most heads fit the small buffer; only a larger one costs the full one.
    let mut small = [0u8; 2048];
    let head = match std_stream.peek(&mut small) {
        Ok(n) if n < small.len() && complete(&small, n) => Head::Complete,
        Ok(n) if n == small.len() => {
            let mut full = vec![0u8; MAX_HEAD_BYTES];
            match std_stream.peek(&mut full) {
                Ok(n) if complete(&full, n) => Head::Complete,
                _ => Head::Incomplete,
            }
        }
        _ => Head::Incomplete,
    };
    Ok((TcpStream::from_std(std_stream)?, head))
}

/// At the cap with no place to give: closed, after a short 503 (written
/// only if the socket takes it at once) if the client has asked something.
fn refuse(stream: TcpStream, head: Head, connections: &Connections) {
    connections.metrics().count_close(CloseReason::Refused);
    if head == Head::Complete {
        let _ = stream.try_write(BUSY_ANSWER);
    }
}

/// Out of descriptors (the reserve for origin and worker sockets is in use
/// too): free one by shedding, and pause briefly. Other accept errors are
/// the client's (reset before accept) and are skipped.
async fn accept_failed(e: &io::Error, connections: &Connections) {
    let exhausted = matches!(e.raw_os_error(), Some(code) if code == EMFILE || code == ENFILE);
    if exhausted {
        let shed = connections.shed_oldest();
        warn!(error = %e, shed_one = shed, "accept failed: out of file descriptors");
        tokio::time::sleep(EMFILE_PAUSE).await;
    } else {
        debug!(error = %e, "accept failed");
    }
}

const EMFILE: i32 = 24;
const ENFILE: i32 = 23;

/// One connection's task and what it needs.
struct ConnTask {
    app: Router,
    cfg: ServeConfig,
    connections: Arc<Connections>,
    stopping: watch::Receiver<bool>,
    _alive: mpsc::Sender<()>,
}

impl ConnTask {
    async fn run(mut self, stream: TcpStream, registered: super::connections::Registered) {
        let _ = stream.set_nodelay(true);
        let conn = Arc::clone(&registered.conn);
        let app = self.app.clone();
        let svc_conn = Arc::clone(&conn);
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let guard = RequestGuard::start(Arc::clone(&svc_conn));
            let call = app.clone().oneshot(req.map(Body::new));
            async move {
                let resp = match call.await {
                    Ok(resp) => resp,
                    Err(never) => match never {},
                };
                Ok::<_, Infallible>(resp.map(|body| GuardedBody {
                    body,
                    _guard: guard,
                }))
            }
        });
        let http = hyper::server::conn::http1::Builder::new()
            .max_buf_size(MAX_HEAD_BYTES)
            .max_headers(MAX_HEADERS)
            .serve_connection(TokioIo::new(stream), service);
        {
            tokio::pin!(http);
            let mut draining = *self.stopping.borrow();
            if draining {
                http.as_mut().graceful_shutdown();
            }
            loop {
                let deadline = match conn.next(self.cfg.deadlines, Instant::now()) {
                    Next::Close(reason) => {
                        self.connections.metrics().count_close(reason);
                        debug!(reason = reason.as_str(), "closing client connection");
                        break;
                    }
                    Next::WaitUntil(at) => at,
                };
                let timer = async move {
                    match deadline {
                        Some(at) => tokio::time::sleep_until(at.into()).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = &mut http => break,
                    _ = conn.changed() => {}
                    _ = timer => {}
                    _ = self.stopping.changed(), if !draining => {
                        draining = true;
                        http.as_mut().graceful_shutdown();
                    }
                }
            }
        }
        // The connection (and its descriptor) is gone; only now unregister it.
        drop(registered);
    }
}

/// Marks the connection busy while one request is being answered: from
/// the parsed head until the answer's body has been written or dropped.
struct RequestGuard(Arc<Conn>);

impl RequestGuard {
    fn start(conn: Arc<Conn>) -> RequestGuard {
        conn.request_started();
        RequestGuard(conn)
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.request_finished(Instant::now());
    }
}

/// A response body that holds its request's [`RequestGuard`]; hyper drops
/// it once the last byte is written.
struct GuardedBody {
    body: Body,
    _guard: RequestGuard,
}

impl HttpBody for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
