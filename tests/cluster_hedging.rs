//! A frozen worker (SIGSTOP: its kernel still accepts connections, it
//! answers nothing) under load: the gateway hedges, ejects it without
//! waiting for gossip, serves every request quickly, and uses it again
//! once it answers.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

/// Sends SIGCONT to a stopped process when dropped, so a failing test
/// never leaves a frozen worker behind.
struct Thaw(u32);

impl Thaw {
    fn freeze(node: &Node) -> Thaw {
        let pid = node
            .child
            .as_ref()
            .and_then(|c| c.id())
            .expect("worker pid");
        signal(pid, "STOP");
        let thaw = Thaw(pid);
        wait_stopped(pid);
        thaw
    }
}

/// Waits until every thread of `pid` is stopped: `kill` returns once the
/// signal is sent, and a thread running on another core may still answer
/// a request before it takes the stop (seen on a loaded machine).
fn wait_stopped(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("list threads");
        let all_stopped = tasks.flatten().all(|t| {
            let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
            // The state follows the command name in parentheses.
            let state = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next());
            matches!(state, Some('T') | Some('t') | None)
        });
        if all_stopped {
            return;
        }
        assert!(Instant::now() < deadline, "process {pid} did not stop");
        std::thread::sleep(Duration::from_millis(2));
    }
}

impl Drop for Thaw {
    fn drop(&mut self) {
        signal(self.0, "CONT");
    }
}

fn signal(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{sig} {pid}");
}

/// Warms `n` URLs through the gateway; returns them with their owners.
async fn warm(gw: &Node, origin: &Origin, n: usize) -> Vec<(String, String)> {
    let mut out = vec![];
    for i in 0..n {
        let url = origin.url(&format!("/img/h{i}.png"));
        let r = get_image(gw, &url, &[]).await;
        assert_eq!(r.status(), 200);
        out.push((url, header(&r, "x-served-by").to_string()));
    }
    out
}

/// One request: its status, who served it, how long it took.
async fn timed(client: &reqwest::Client, gw: &Node, url: &str) -> (u16, String, Duration) {
    timed_at(client, &gw.url("/image"), url).await
}

/// [`timed`] against the gateway's `/image` URL.
async fn timed_at(client: &reqwest::Client, image: &str, url: &str) -> (u16, String, Duration) {
    let started = Instant::now();
    let r = client.get(image).query(&[("url", url)]).send().await;
    let took = started.elapsed();
    match r {
        Ok(r) => {
            let status = r.status().as_u16();
            let by = header(&r, "x-served-by").to_string();
            let ok = r.bytes().await.is_ok();
            (if ok { status } else { 0 }, by, started.elapsed().max(took))
        }
        Err(_) => (0, String::new(), took),
    }
}

/// One request's URL, status, server and time.
type Sample = (String, (u16, String, Duration));

/// Six clients requesting `urls` in turn through `image` for `period`.
async fn load(image: String, urls: Arc<Vec<(String, String)>>, period: Duration) -> Vec<Sample> {
    let started = Instant::now();
    let mut tasks = vec![];
    for t in 0..6 {
        let (urls, image) = (Arc::clone(&urls), image.clone());
        tasks.push(tokio::spawn(async move {
            let c = client();
            let mut seen = vec![];
            let mut i = t;
            while started.elapsed() < period {
                let (url, _) = &urls[i % urls.len()];
                seen.push((url.clone(), timed_at(&c, &image, url).await));
                i += 7;
            }
            seen
        }));
    }
    let mut results = vec![];
    for t in tasks {
        results.extend(t.await.unwrap());
    }
    results
}

fn slowest(results: &[Sample]) -> Duration {
    results
        .iter()
        .map(|(_, (_, _, d))| *d)
        .max()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_frozen_worker_stalls_no_request_under_load() {
    let origin = Origin::start().await;
    let cluster = Cluster::start(1, 3, &no_gateway_cache()).await;
    let gw = &cluster.gateways[0];
    let urls = Arc::new(warm(gw, &origin, 30).await);
    // The same load before the freeze: on a machine busy with other work
    // even hits are slow, and a freeze costs a hedge delay, a probe (at
    // least 300 ms, twice the observed lookup latency when that is higher,
    // so that a loaded worker is not taken for a frozen one) and a fill on
    // the next worker (which does not wait on the frozen one for a peer
    // copy) to the requests in flight when it starts; later ones skip the
    // ejected worker. On an idle machine the bound is about 0.5 s; waiting
    // out the 5 s lookup deadline, gossip's failure detection or a peer
    // fill's deadline per request fails it.
    let baseline = load(gw.url("/image"), Arc::clone(&urls), Duration::from_secs(2)).await;
    let bound = Duration::from_millis(500) + slowest(&baseline) * 4;
    // Freeze an owner that is not the gossip seed.
    let victim = urls
        .iter()
        .map(|(_, w)| w.clone())
        .find(|w| w != "worker-0")
        .expect("a key owned by worker-1 or worker-2");
    let thaw = Thaw::freeze(cluster.worker(&victim));
    let results = load(gw.url("/image"), Arc::clone(&urls), Duration::from_secs(6)).await;
    drop(thaw);

    let failed: Vec<_> = results.iter().filter(|(_, (s, _, _))| *s != 200).collect();
    assert!(failed.is_empty(), "failed requests: {failed:?}");
    let worst = slowest(&results);
    assert!(
        worst < bound,
        "slowest request took {worst:?} (bound {bound:?}); log:\n{}",
        gw.logs()
    );
    assert!(
        results.len() >= 12,
        "only {} requests in 6 s",
        results.len()
    );
    let by_victim = results
        .iter()
        .filter(|(_, (_, by, _))| *by == victim)
        .count();
    assert_eq!(by_victim, 0, "a frozen worker answered");
    assert!(gw.metric("img_proxy_gateway_hedges_total").await >= 1.0);
    assert!(gw.metric("img_proxy_gateway_ejections_total").await >= 1.0);
    eprintln!(
        "{} requests while frozen, slowest {worst:?}; baseline slowest {:?}",
        results.len(),
        slowest(&baseline)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ejected_worker_is_used_again_after_its_backoff() {
    let origin = Origin::start().await;
    let cluster = Cluster::start(1, 3, &no_gateway_cache()).await;
    let gw = &cluster.gateways[0];
    let urls = warm(gw, &origin, 30).await;
    let (url, victim) = owned_by_another_than_worker_0(&urls);
    let c = client();

    let thaw = Thaw::freeze(cluster.worker(&victim));
    let frozen_at = Instant::now();
    let (status, by, _) = timed(&c, gw, &url).await;
    drop(thaw);
    assert_eq!(status, 200);
    assert_ne!(by, victim);
    assert!(gw.metric("img_proxy_gateway_ejections_total").await >= 1.0);
    let ejected = format!("worker ejected worker={victim} backoff_ms=2000");
    assert!(gw.logs().contains(&ejected), "{}", gw.logs());

    // It answers again at once and is still a member, but the gateway
    // skips it until its back-off (2 s from a moment after the freeze)
    // ends, then asks it again: it still holds the image.
    loop {
        let (status, by, _) = timed(&c, gw, &url).await;
        assert_eq!(status, 200);
        if by == victim {
            break;
        }
        assert!(
            frozen_at.elapsed() < Duration::from_secs(15),
            "the recovered owner was not asked again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        frozen_at.elapsed() >= Duration::from_secs(2),
        "an ejected worker was asked during its back-off"
    );
    assert!(gw.members("worker").await.contains(&victim));
    assert_eq!(gw.metric("img_proxy_gateway_ejected_workers").await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failover_fill_does_not_wait_on_the_frozen_owner_for_a_peer_copy() {
    let origin = Origin::start().await;
    let cluster = Cluster::start(1, 3, &no_gateway_cache()).await;
    let gw = &cluster.gateways[0];
    let urls = warm(gw, &origin, 30).await;
    let (url, victim) = owned_by_another_than_worker_0(&urls);
    let mut before = std::collections::HashMap::new();
    for w in &cluster.workers {
        let misses = w.metric("img_proxy_cache_peer_fill_misses_total").await;
        before.insert(w.name.clone(), misses);
    }

    // A variant nobody holds: the fill moves to the next worker once the
    // frozen owner fails its probe. The gateway names the owner it passed
    // over, so that worker goes to the origin at once instead of asking
    // the frozen owner for a copy (and waiting out the peer deadline).
    let thaw = Thaw::freeze(cluster.worker(&victim));
    let r = get_image(gw, &url, &[("w", "7")]).await;
    drop(thaw);
    assert_eq!(r.status(), 200);
    let filler = header(&r, "x-served-by").to_string();
    assert_ne!(filler, victim);
    let node = cluster.worker(&filler);
    assert!(node.metric("img_proxy_cache_peer_fill_skipped_total").await >= 1.0);
    assert_eq!(
        node.metric("img_proxy_cache_peer_fill_misses_total").await,
        before[&filler],
        "the next worker asked the frozen owner for a copy"
    );
    // The warm-up's fetch, then the next worker's.
    assert_eq!(origin.hits(&url_path(&url)), 2);
}

fn url_path(url: &str) -> String {
    reqwest::Url::parse(url).unwrap().path().to_string()
}

/// These tests are about forwarding to workers: the gateway's own cache of
/// hot images would answer repeated URLs without asking any worker.
fn no_gateway_cache() -> [(&'static str, String); 1] {
    [("GATEWAY_CACHE_BYTES", "0".into())]
}

/// A warmed URL and its owner, any worker but worker-0 (the cluster's
/// gossip seed, kept running).
fn owned_by_another_than_worker_0(urls: &[(String, String)]) -> (String, String) {
    urls.iter()
        .find(|(_, w)| w != "worker-0")
        .cloned()
        .expect("a key owned by worker-1 or worker-2")
}
