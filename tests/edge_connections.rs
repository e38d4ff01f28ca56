//! Slow and idle client connections, bounded request heads and the
//! connection cap, against a real node.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Connects to `node` and sends `bytes`.
async fn send(node: &Node, bytes: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(node.http).await.unwrap();
    s.write_all(bytes).await.unwrap();
    s
}

/// Reads until the peer closes (Ok(bytes read)) or `within` passes (Err).
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Result<Vec<u8>, ()> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return Err(()),
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_that_never_completes_is_cut_at_the_header_deadline() {
    let node = Node::spawn("", "slow-head", &[("HEADER_READ_TIMEOUT", "1s".into())]);
    node.wait_up().await;
    let mut s = send(&node, b"GET /health HTTP/1.1\r\nHost: x\r\n").await;
    let started = Instant::now();
    // One more header line every 300 ms: still not a whole head.
    let mut closed = false;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        if s.write_all(b"X-Slow: 1\r\n").await.is_err() {
            closed = true;
            break;
        }
        let mut probe = [0u8; 1];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(1), s.read(&mut probe)).await
        {
            closed = true;
            break;
        }
    }
    let elapsed = started.elapsed();
    assert!(closed, "connection still open after {elapsed:?}");
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_millis(2500),
        "{elapsed:?}"
    );
    assert!(
        node.metric("img_proxy_client_connections_closed_total{reason=\"header_timeout\"}")
            .await
            >= 1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_its_timeout() {
    let node = Node::spawn("", "idle", &[("KEEP_ALIVE_TIMEOUT", "1s".into())]);
    node.wait_up().await;
    let mut s = send(&node, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    let answered = Instant::now();
    let rest = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(rest.is_ok(), "idle connection not closed within 5 s");
    let idle = answered.elapsed();
    assert!(
        idle >= Duration::from_millis(900) && idle < Duration::from_millis(2500),
        "{idle:?}"
    );
}

/// What a fresh node answers to a `/health` request carrying `headers`;
/// the write may fail half-way once the node has refused the head.
async fn answer_to_head(name: &str, headers: &str) -> String {
    let node = Node::spawn("", name, &[]);
    node.wait_up().await;
    let mut s = TcpStream::connect(node.http).await.unwrap();
    let req = format!("GET /health HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
    let _ = s.write_all(req.as_bytes()).await;
    let answer = read_until_closed(&mut s, Duration::from_secs(5)).await;
    String::from_utf8_lossy(&answer.unwrap_or_default()).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_heads_are_refused_with_431() {
    let filler: String = (0..100)
        .map(|i| format!("X-Filler-{i}: {}\r\n", "a".repeat(400)))
        .collect();
    let answer = answer_to_head("big-head", &filler).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_header_fields_are_refused_with_431() {
    let fields: String = (0..100).map(|i| format!("X-F{i}: 1\r\n")).collect();
    let answer = answer_to_head("many-headers", &fields).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
}

/// One slow-header client: connects, sends half a request, then a header
/// line every 2 s; reconnects whenever the node cuts it; stops at `until`.
async fn slow_client(addr: SocketAddr, until: tokio::time::Instant) -> usize {
    let mut connects = 0;
    while tokio::time::Instant::now() < until {
        let Ok(Ok(mut s)) =
            tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(addr)).await
        else {
            continue;
        };
        connects += 1;
        if s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            .await
            .is_err()
        {
            continue;
        }
        let mut buf = [0u8; 64];
        loop {
            let tick = tokio::time::sleep(Duration::from_secs(2));
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return connects,
                r = s.read(&mut buf) => if matches!(r, Ok(0) | Err(_)) { break },
                _ = tick => if s.write_all(b"X-Slow: 1\r\n").await.is_err() { break },
            }
        }
    }
    connects
}

/// A fresh connection (a new visitor) per probe, so a kept-alive idle
/// connection is never what is measured.
fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// Slow-header clients (2,000, or `ATTACKERS`) against `http` for
/// `attack_for`, on their own thread and runtime, as another machine would
/// run them; the thread returns how many connections they made.
fn attack(http: SocketAddr, attack_for: Duration) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let until = tokio::time::Instant::now() + attack_for;
            let n_attackers: usize = std::env::var("ATTACKERS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(2000);
            let tasks: Vec<_> = (0..n_attackers)
                .map(|_| tokio::spawn(slow_client(http, until)))
                .collect();
            let mut connects = 0;
            for t in tasks {
                connects += t.await.unwrap_or(0);
            }
            connects
        })
    })
}

/// Twenty probes, alternately `/health` and a cached image (which must be
/// a HIT), each on a new connection; their times, sorted.
async fn probe_times(node: &Node, source: &str) -> Vec<Duration> {
    let probe = fresh_client();
    let mut times = Vec::new();
    let image_url = format!("{}?url={}", node.url("/image"), source);
    for i in 0..20 {
        let url = if i % 2 == 0 {
            node.url("/health")
        } else {
            image_url.clone()
        };
        let started = Instant::now();
        let r = probe
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("probe {i} failed: {e}"));
        assert_eq!(r.status(), 200, "probe {i}");
        if i % 2 == 1 {
            assert_eq!(header(&r, "x-cache"), "HIT");
        }
        r.bytes().await.unwrap();
        times.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    times.sort();
    times
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_slow_header_clients_do_not_starve_health_or_cache_hits() {
    let origin = Origin::start().await;
    let http: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
    let gossip: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
    let node = Node::spawn_limited("", "besieged", http, gossip, &[], Some(1024));
    node.wait_up().await;
    let source = origin.url("/img/besieged.png");
    assert_eq!(get_image(&node, &source, &[]).await.status(), 200);

    let attacker = attack(http, Duration::from_secs(4));
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let times = probe_times(&node, &source).await;
    let connects = attacker.join().unwrap();
    let (median, worst) = (times[times.len() / 2], times[times.len() - 1]);
    eprintln!(
        "slow clients made {connects} connections; probes: median {median:?}, worst {worst:?}"
    );
    assert!(
        connects > 2000,
        "the node never cut a slow client ({connects} connections)"
    );
    let closed =
        |reason: &str| format!("img_proxy_client_connections_closed_total{{reason=\"{reason}\"}}");
    let shed = node.metric(&closed("shed")).await;
    let refused = node.metric(&closed("refused")).await;
    eprintln!("shed {shed}, refused {refused}");
    // The attack runs on the same two cores as the node (and whatever else
    // the machine runs); the median is the node's answer time, the worst
    // case must at least never be a stall (a dropped SYN costs 1 s).
    assert!(
        median < Duration::from_millis(100),
        "median probe {median:?}"
    );
    assert!(worst < Duration::from_millis(500), "worst probe {worst:?}");
    assert!(shed > 0.0, "the cap was never reached");
    assert!(
        !node.logs().contains("Too many open files"),
        "{}",
        node.logs()
    );
    assert_eq!(origin.hits("/img/besieged.png"), 1);
}
