//! Rebalancing without a stampede: a worker that joins a warm cluster
//! fills its share from the previous owners (peer fill), and a worker that
//! leaves gracefully hands its entries to the next owners (hand-off); in
//! both cases no cached URL goes back to its origin.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use img_proxy::cluster::placement;

const VARIANT: [(&str, &str); 2] = [("w", "8"), ("format", "png")];

/// Requests the original and one variant of every source through `gw`;
/// returns who served each source, and checks every answer is `x_cache`
/// (any when `None`) with the bytes of `expected` (when given).
async fn request_all(
    gw: &Node,
    sources: &[String],
    x_cache: Option<&str>,
) -> HashMap<String, String> {
    let mut served = HashMap::new();
    for source in sources {
        for extra in [&[][..], &VARIANT[..]] {
            let r = get_image(gw, source, extra).await;
            assert_eq!(r.status(), 200, "{source} {extra:?}");
            if let Some(want) = x_cache {
                assert_eq!(header(&r, "x-cache"), want, "{source} {extra:?}");
            }
            served.insert(source.clone(), header(&r, "x-served-by").to_string());
        }
    }
    served
}

fn sources(origin: &Origin, prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| origin.url(&format!("/img/{prefix}{i}.png")))
        .collect()
}

async fn sum_metric(nodes: &[Node], name: &str) -> f64 {
    let mut total = 0.0;
    for n in nodes {
        total += n.metric(name).await;
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scaling_a_warm_cluster_from_3_to_4_workers_fetches_nothing_again() {
    let origin = Origin::start().await;
    let mut cluster = Cluster::start(1, 3, &[]).await;
    let sources = sources(&origin, "scale", 60);
    request_all(&cluster.gateways[0], &sources, Some("MISS")).await;
    assert_eq!(origin.total(), 60, "one origin request per source");

    let env = [
        ("CLUSTER_SECRET", SECRET.to_string()),
        ("KNOWN_HOSTS", cluster.workers[0].gossip.to_string()),
    ];
    let newcomer = Node::spawn("worker", "worker-3", &env);
    newcomer.wait_up().await;
    let all = ["worker-0", "worker-1", "worker-2", "worker-3"];
    newcomer
        .wait_members("worker", &all, Duration::from_secs(20))
        .await;
    cluster.gateways[0]
        .wait_members("worker", &all, Duration::from_secs(20))
        .await;
    cluster.workers.push(newcomer);

    let served = request_all(&cluster.gateways[0], &sources, Some("HIT")).await;
    // Who owns a URL now, by the placement function itself: the answers'
    // X-Served-By may name the previous owner, whose hedged lookup can win
    // while the newcomer copies the entry from it.
    let names: Vec<String> = all.iter().map(|n| n.to_string()).collect();
    let moved = sources
        .iter()
        .filter(|s| {
            let url = img_proxy::protocol::parse_source_url(s).unwrap();
            placement::owner(url.as_str(), &names).map(String::as_str) == Some("worker-3")
        })
        .count();
    let served_by_newcomer = served.values().filter(|w| *w == "worker-3").count();
    eprintln!(
        "{moved} of 60 URLs moved to the newcomer ({served_by_newcomer} answered by it), \
         origin requests: {}",
        origin.total() - 60
    );
    assert!(served_by_newcomer <= moved);
    assert!(moved >= 5, "only {moved} of 60 URLs moved to the newcomer");
    assert_eq!(
        origin.total(),
        60,
        "a URL cached before the scale-up was fetched again"
    );
    let newcomer = &cluster.workers[3];
    // The original and the variant of each moved URL came from a peer.
    let hits = newcomer
        .metric("img_proxy_cache_peer_fill_hits_total")
        .await;
    assert_eq!(hits, (2 * moved) as f64, "log:\n{}", newcomer.logs());
    // The copies are the newcomer's now: asked again, they are plain hits.
    request_all(&cluster.gateways[0], &sources, Some("HIT")).await;
    assert_eq!(
        newcomer
            .metric("img_proxy_cache_peer_fill_hits_total")
            .await,
        hits
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sigtermed_workers_entries_are_hits_on_their_new_owners() {
    let origin = Origin::start().await;
    let mut cluster = Cluster::start(1, 3, &[]).await;
    let sources = sources(&origin, "leave", 30);
    let owners = request_all(&cluster.gateways[0], &sources, Some("MISS")).await;
    let leaver = "worker-1";
    let theirs: Vec<String> = sources
        .iter()
        .filter(|s| owners[*s] == leaver)
        .cloned()
        .collect();
    assert!(
        theirs.len() >= 3,
        "{leaver} owns only {} URLs",
        theirs.len()
    );

    let mut node = cluster.workers.remove(1);
    node.signal("TERM");
    let mut child = node.child.take().expect("running");
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("the worker did not exit after SIGTERM")
        .unwrap();
    assert!(status.success(), "exit {status}; log:\n{}", node.logs());
    assert!(
        node.logs().contains("hand-off done"),
        "log:\n{}",
        node.logs()
    );
    cluster.gateways[0]
        .wait_members("worker", &["worker-0", "worker-2"], Duration::from_secs(10))
        .await;

    let served = request_all(&cluster.gateways[0], &theirs, Some("HIT")).await;
    assert!(served.values().all(|w| w != leaver));
    assert_eq!(origin.total(), 30, "a handed-off URL was fetched again");
    let received = sum_metric(
        &cluster.workers,
        "img_proxy_cache_handoff_received_entries_total",
    )
    .await;
    assert_eq!(received, (2 * theirs.len()) as f64);
}
