//! Test harness: a counting origin server and real `img-proxy` processes on
//! loopback.
//!
//! Nodes are the release-style binary started as child processes with the
//! documented environment variables, exactly as users and compose start
//! them; they are killed when the handle drops. The origin listens on
//! 127.0.0.2, which nodes are told to allow through
//! `ALLOWED_SOURCE_NETWORKS`, so 127.0.0.1 and `localhost` stay forbidden
//! and can be tested as such.

#![allow(dead_code)]

pub mod answer;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener as StdTcpListener, UdpSocket as StdUdpSocket};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::process::{Child, Command};

pub const SECRET: &str = "test-cluster-secret-0123456789";
pub const ORIGIN_IP: &str = "127.0.0.2";

/// A small PNG whose colour depends on `seed`, so each path has its own bytes.
pub fn png(seed: &str, w: u32, h: u32) -> Vec<u8> {
    let hash = seed
        .bytes()
        .fold(7u32, |a, b| a.wrapping_mul(31).wrapping_add(b as u32));
    let img = image::RgbaImage::from_fn(w, h, |x, y| {
        image::Rgba([(hash & 0xff) as u8, (x * 7) as u8, (y * 5) as u8, 255])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("encoding a PNG in memory");
    out.into_inner()
}

/// Bytes and `Content-Type` registered with [`Origin::put`], by path.
type Files = Arc<Mutex<HashMap<String, (Vec<u8>, String)>>>;

/// An origin server that counts requests per path.
pub struct Origin {
    pub addr: SocketAddr,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    total: Arc<AtomicUsize>,
    files: Files,
    gate: Arc<tokio::sync::watch::Sender<bool>>,
    files_state: FilesState,
}

/// How `/files/` answers besides its bytes: a forced failure status, and
/// counts of body bytes served and of 304 answers.
#[derive(Clone, Default)]
struct FilesState {
    /// When set, every `/files/` request is answered with this status.
    failing: Arc<Mutex<Option<u16>>>,
    body_bytes: Arc<AtomicUsize>,
    not_modified: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct OriginState {
    hits: Arc<Mutex<HashMap<String, usize>>>,
    total: Arc<AtomicUsize>,
    files: Files,
    /// Open (true) unless a test holds `/files/` answers back.
    gate: Arc<tokio::sync::watch::Sender<bool>>,
    files_state: FilesState,
}

impl OriginState {
    fn count(&self, path: &str) -> usize {
        self.total.fetch_add(1, Ordering::SeqCst);
        let mut h = self.hits.lock().unwrap();
        let c = h.entry(path.to_string()).or_default();
        *c += 1;
        *c
    }
}

impl Origin {
    /// Starts the origin on `ip` (usually [`ORIGIN_IP`]) and an ephemeral port.
    pub async fn start_on(ip: &str) -> Origin {
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let total = Arc::new(AtomicUsize::new(0));
        let files: Files = Arc::default();
        let gate = Arc::new(tokio::sync::watch::Sender::new(true));
        let files_state = FilesState::default();
        let state = OriginState {
            hits: hits.clone(),
            total: total.clone(),
            files: files.clone(),
            gate: gate.clone(),
            files_state: files_state.clone(),
        };
        let app = Router::new()
            .route("/img/{name}", get(img))
            .route("/slowimg/{name}", get(slow_img))
            .route("/status/{code}", get(status))
            .route("/html", get(html))
            .route("/svg", get(svg))
            .route("/big", get(big))
            .route("/hang", get(hang))
            .route("/redirect", get(redirect))
            .route("/flaky/{name}", get(flaky))
            .route("/files/{*name}", get(file))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind((ip, 0))
            .await
            .expect("bind origin");
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Origin {
            addr,
            hits,
            total,
            files,
            gate,
            files_state,
        }
    }

    pub async fn start() -> Origin {
        Origin::start_on(ORIGIN_IP).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Serves `bytes` as `content_type` at `/files/<name>` from now on and
    /// returns that path (for [`Origin::url`] and [`Origin::hits`]).
    pub fn put(&self, name: &str, bytes: Vec<u8>, content_type: &str) -> String {
        let path = format!("/files/{name}");
        self.files
            .lock()
            .unwrap()
            .insert(path.clone(), (bytes, content_type.to_string()));
        path
    }

    /// Holds back every `/files/` answer (the request is counted at once)
    /// until [`Origin::release`].
    pub fn hold(&self) {
        self.gate.send_replace(false);
    }

    /// Lets held and future `/files/` answers go.
    pub fn release(&self) {
        self.gate.send_replace(true);
    }

    /// Answers every `/files/` request with `status` (e.g. 503) until
    /// called again with `None`.
    pub fn fail(&self, status: Option<u16>) {
        *self.files_state.failing.lock().unwrap() = status;
    }

    /// Body bytes sent by `/files/` answers so far (304s send none).
    pub fn body_bytes(&self) -> usize {
        self.files_state.body_bytes.load(Ordering::SeqCst)
    }

    /// `304 Not Modified` answers sent by `/files/` so far.
    pub fn not_modified(&self) -> usize {
        self.files_state.not_modified.load(Ordering::SeqCst)
    }

    /// Requests seen for `path`.
    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    /// Requests seen in all.
    pub fn total(&self) -> usize {
        self.total.load(Ordering::SeqCst)
    }
}

fn png_response(name: &str) -> Response {
    ([(header::CONTENT_TYPE, "image/png")], png(name, 16, 12)).into_response()
}

async fn img(State(s): State<OriginState>, Path(name): Path<String>) -> Response {
    s.count(&format!("/img/{name}"));
    png_response(&name)
}

async fn slow_img(State(s): State<OriginState>, Path(name): Path<String>) -> Response {
    s.count(&format!("/slowimg/{name}"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    png_response(&name)
}

async fn status(State(s): State<OriginState>, Path(code): Path<u16>) -> Response {
    s.count(&format!("/status/{code}"));
    (StatusCode::from_u16(code).unwrap(), "origin error").into_response()
}

async fn html(State(s): State<OriginState>) -> Response {
    s.count("/html");
    (
        [(header::CONTENT_TYPE, "image/png")],
        "<!DOCTYPE html><html><body>hi</body></html>",
    )
        .into_response()
}

async fn svg(State(s): State<OriginState>) -> Response {
    s.count("/svg");
    (
        [(header::CONTENT_TYPE, "image/svg+xml")],
        "<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>",
    )
        .into_response()
}

/// A PNG-looking body of 3 MiB, streamed without Content-Length.
async fn big(State(s): State<OriginState>) -> Response {
    s.count("/big");
    let mut first = png("big", 4, 4);
    first.truncate(16);
    let chunks = std::iter::once(Ok::<_, std::io::Error>(first))
        .chain((0..48).map(|_| Ok(vec![0u8; 64 * 1024])));
    let stream = futures::stream::iter(chunks);
    (
        [(header::CONTENT_TYPE, "image/png")],
        Body::from_stream(stream),
    )
        .into_response()
}

async fn hang(State(s): State<OriginState>) -> Response {
    s.count("/hang");
    tokio::time::sleep(Duration::from_secs(60)).await;
    png_response("hang")
}

async fn redirect(
    State(s): State<OriginState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    s.count("/redirect");
    let to = q.get("to").cloned().unwrap_or_default();
    (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
}

/// The `ETag` `/files/` gives `bytes`: a hash of them.
fn file_etag(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    });
    format!("\"{hash:016x}\"")
}

/// Registered bytes with an `ETag` and a `Last-Modified`, or 304 to a
/// matching `If-None-Match`, or 404; or the forced failure status.
async fn file(
    State(s): State<OriginState>,
    Path(name): Path<String>,
    req_headers: axum::http::HeaderMap,
) -> Response {
    let path = format!("/files/{name}");
    s.count(&path);
    let _ = s.gate.subscribe().wait_for(|open| *open).await;
    let failing = *s.files_state.failing.lock().unwrap();
    if let Some(code) = failing {
        return (StatusCode::from_u16(code).unwrap(), "origin failing").into_response();
    }
    let found = s.files.lock().unwrap().get(&path).cloned();
    let Some((bytes, ct)) = found else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let etag = file_etag(&bytes);
    let last_modified = "Mon, 02 Jan 2006 15:04:05 GMT";
    let asked = req_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    if asked == Some(etag.as_str()) {
        s.files_state.not_modified.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    s.files_state
        .body_bytes
        .fetch_add(bytes.len(), Ordering::SeqCst);
    (
        [
            (header::CONTENT_TYPE, ct),
            (header::ETAG, etag),
            (header::LAST_MODIFIED, last_modified.to_string()),
        ],
        bytes,
    )
        .into_response()
}

/// Fails the first time a name is asked for, then serves an image.
async fn flaky(State(s): State<OriginState>, Path(name): Path<String>) -> Response {
    let n = s.count(&format!("/flaky/{name}"));
    if n == 1 {
        (StatusCode::INTERNAL_SERVER_ERROR, "try again").into_response()
    } else {
        png_response(&name)
    }
}

/// Ports handed to test nodes come from below the kernel's ephemeral range
/// (Linux: 32768-60999), one after another within a test process, starting
/// at a place derived from its pid. A port the kernel picked for `bind(0)`
/// and that was released again can be taken by any outgoing connection or by
/// a concurrent test before the node binds it: the node then fails to start,
/// or (worse) its `/health` is answered by another node on that port. Below
/// the ephemeral range nothing takes a port unasked, and the counter never
/// hands the same one out twice in a process.
const TEST_PORTS: std::ops::Range<u32> = 20_000..32_000;

static NEXT_PORT: AtomicUsize = AtomicUsize::new(0);

/// The next port of [`TEST_PORTS`] that `bind` accepts now.
fn next_test_port(bindable: impl Fn(u16) -> bool) -> u16 {
    let span = (TEST_PORTS.end - TEST_PORTS.start) as usize;
    let start = (std::process::id() as usize).wrapping_mul(7_919) % span;
    for _ in 0..span {
        let n = NEXT_PORT.fetch_add(1, Ordering::Relaxed);
        let port = TEST_PORTS.start as usize + (start + n) % span;
        let port = u16::try_from(port).expect("test ports fit in u16");
        if bindable(port) {
            return port;
        }
    }
    panic!("no free test port in {TEST_PORTS:?}");
}

/// A TCP port for a test node (see [`TEST_PORTS`]).
pub fn free_tcp_port() -> u16 {
    next_test_port(|port| StdTcpListener::bind(("127.0.0.1", port)).is_ok())
}

/// A UDP port for a test node's gossip (see [`TEST_PORTS`]).
pub fn free_udp_port() -> u16 {
    next_test_port(|port| StdUdpSocket::bind(("127.0.0.1", port)).is_ok())
}

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_img-proxy"))
}

/// One running node.
pub struct Node {
    pub name: String,
    pub http: SocketAddr,
    pub gossip: SocketAddr,
    pub child: Option<Child>,
    pub log: PathBuf,
}

impl Node {
    /// Starts `img-proxy <role>` with the given environment on top of the
    /// defaults every test node shares.
    pub fn spawn(role: &str, name: &str, env: &[(&str, String)]) -> Node {
        let http: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
        let gossip: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
        Node::spawn_at(role, name, http, gossip, env)
    }

    pub fn spawn_at(
        role: &str,
        name: &str,
        http: SocketAddr,
        gossip: SocketAddr,
        env: &[(&str, String)],
    ) -> Node {
        Node::spawn_limited(role, name, http, gossip, env, None)
    }

    /// Like [`Node::spawn_at`], with the process's descriptor limit
    /// (`RLIMIT_NOFILE`, soft and hard) set to `nofile`, as `ulimit -n` would.
    pub fn spawn_limited(
        role: &str,
        name: &str,
        http: SocketAddr,
        gossip: SocketAddr,
        env: &[(&str, String)],
        nofile: Option<u64>,
    ) -> Node {
        let log = std::env::temp_dir().join(format!(
            "img-proxy-test-{}-{name}-{}.log",
            std::process::id(),
            http.port()
        ));
        let logfile = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(binary());
        if !role.is_empty() {
            cmd.arg(role);
        }
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HTTP_ADDR", http.to_string())
            .env("GOSSIP_ADDR", gossip.to_string())
            .env("NAME", name)
            .env("GOSSIP_INTERVAL", "200ms")
            .env("ALLOWED_SOURCE_NETWORKS", format!("{ORIGIN_IP}/32"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(logfile))
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        if let Some(n) = nofile {
            // SAFETY: setrlimit is async-signal-safe and touches nothing
            // but the child's own limits.
            unsafe {
                cmd.pre_exec(move || {
                    let lim = libc::rlimit {
                        rlim_cur: n,
                        rlim_max: n,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let child = cmd.spawn().expect("spawn img-proxy");
        Node {
            name: name.to_string(),
            http,
            gossip,
            child: Some(child),
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    /// The node's log so far, for assertion messages.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `/health` answers.
    pub async fn wait_up(&self) {
        let c = client();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(r) = c.get(self.url("/health")).send().await {
                if r.status().is_success() {
                    // Make sure it is this node that answered on its port.
                    let health: serde_json::Value = r.json().await.unwrap_or_default();
                    assert_eq!(
                        health["name"], self.name,
                        "another node answers on {}'s port {}",
                        self.name, self.http
                    );
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("node {} did not come up; log:\n{}", self.name, self.logs());
    }

    /// Names of the members this node sees, by role.
    pub async fn members(&self, role: &str) -> Vec<String> {
        let Ok(r) = client().get(self.url("/health")).send().await else {
            return vec![];
        };
        let Ok(v) = r.json::<serde_json::Value>().await else {
            return vec![];
        };
        let mut names: Vec<String> = v["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["role"] == role)
            .filter_map(|m| m["name"].as_str().map(String::from))
            .collect();
        names.sort();
        names
    }

    /// Waits until this node sees exactly `expected` members of `role`.
    pub async fn wait_members(&self, role: &str, expected: &[&str], within: Duration) {
        let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        want.sort();
        let deadline = Instant::now() + within;
        loop {
            let got = self.members(role).await;
            if got == want {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "{} sees {role}s {got:?}, expected {want:?}; log:\n{}",
                    self.name,
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A metric's value from `/metrics` (the first sample whose name and
    /// labels start with `prefix`), or 0.
    pub async fn metric(&self, prefix: &str) -> f64 {
        let text = client()
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Sends a signal to the process.
    pub fn signal(&self, sig: &str) {
        if let Some(pid) = self.child.as_ref().and_then(|c| c.id()) {
            let _ = std::process::Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(pid.to_string())
                .status();
        }
    }

    /// Kills the process at once, as a crash would.
    pub async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }
}

/// An HTTP client for tests; never follows redirects.
pub fn client() -> reqwest::Client {
    img_proxy::worker::fetch::install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A cluster of gateways and workers that found each other through the
/// first node as seed.
pub struct Cluster {
    pub gateways: Vec<Node>,
    pub workers: Vec<Node>,
}

impl Cluster {
    pub async fn start(gateways: usize, workers: usize, extra: &[(&str, String)]) -> Cluster {
        let seed_gossip: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
        let mut env: Vec<(&str, String)> = vec![
            ("CLUSTER_SECRET", SECRET.to_string()),
            ("KNOWN_HOSTS", seed_gossip.to_string()),
        ];
        env.extend(extra.iter().cloned());
        let mut gw = Vec::new();
        let mut wk = Vec::new();
        for i in 0..workers {
            let name = format!("worker-{i}");
            let node = if i == 0 {
                let http = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
                Node::spawn_at("worker", &name, http, seed_gossip, &env)
            } else {
                Node::spawn("worker", &name, &env)
            };
            wk.push(node);
        }
        for i in 0..gateways {
            gw.push(Node::spawn("gateway", &format!("gateway-{i}"), &env));
        }
        let worker_names: Vec<String> = wk.iter().map(|n| n.name.clone()).collect();
        let names: Vec<&str> = worker_names.iter().map(String::as_str).collect();
        for n in gw.iter().chain(wk.iter()) {
            n.wait_up().await;
        }
        let cluster = Cluster {
            gateways: gw,
            workers: wk,
        };
        cluster
            .wait_converged(&names, Duration::from_secs(20))
            .await;
        cluster
    }

    /// Waits until every gateway sees exactly `workers`; on timeout, panics
    /// with what every node sees and the end of every node's log (a
    /// membership failure is only explained by the node that is missing).
    pub async fn wait_converged(&self, workers: &[&str], within: Duration) {
        let mut want: Vec<String> = workers.iter().map(|s| s.to_string()).collect();
        want.sort();
        let deadline = Instant::now() + within;
        loop {
            let mut all_see = true;
            for g in &self.gateways {
                all_see &= g.members("worker").await == want;
            }
            if all_see {
                return;
            }
            if Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut report = String::new();
        for n in self.gateways.iter().chain(self.workers.iter()) {
            let sees = n.members("worker").await;
            let logs = n.logs();
            let lines: Vec<&str> = logs
                .lines()
                .filter(|l| !l.contains("path=/health"))
                .collect();
            let tail = lines[lines.len().saturating_sub(40)..].join("\n");
            report.push_str(&format!(
                "=== {} sees workers {sees:?}; last log lines:\n{tail}\n",
                n.name
            ));
        }
        panic!("gateways do not all see workers {want:?} after {within:?}:\n{report}");
    }

    pub fn worker(&self, name: &str) -> &Node {
        self.workers.iter().find(|w| w.name == name).unwrap()
    }
}

/// `GET /image?url=<source>` on a node, with extra query pairs.
pub async fn get_image(node: &Node, source: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut pairs: Vec<(&str, &str)> = vec![("url", source)];
    pairs.extend_from_slice(extra);
    client()
        .get(node.url("/image"))
        .query(&pairs)
        .send()
        .await
        .unwrap()
}

pub fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// `GET /image?url=<source>` with extra query pairs and request headers
/// (e.g. `Accept`).
pub async fn get_image_with(
    node: &Node,
    source: &str,
    extra: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut pairs: Vec<(&str, &str)> = vec![("url", source)];
    pairs.extend_from_slice(extra);
    let mut req = client().get(node.url("/image")).query(&pairs);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

/// Sends `n` requests for `path?n=<i>` on `origin` (which the test holds
/// back with [`Origin::hold`]) through `node`, and returns once the origin
/// has seen them all: they are then in flight, holding their slots.
pub async fn start_held(
    node: &Node,
    origin: &Origin,
    path: &str,
    n: usize,
) -> Vec<tokio::task::JoinHandle<reqwest::Result<reqwest::Response>>> {
    let held = (0..n)
        .map(|i| {
            let url = origin.url(&format!("{path}?n={i}"));
            let node_url = node.url("/image");
            tokio::spawn(async move { client().get(node_url).query(&[("url", url)]).send().await })
        })
        .collect();
    while origin.hits(path) < n {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    held
}
