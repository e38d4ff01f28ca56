//! What a node writes to stderr when no terminal reads it.

mod common;

use common::*;

/// Logs that go to a file or a pipe (`docker logs`, journald, a log
/// shipper) carry no ANSI colour codes; the test harness's nodes write to
/// a file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_to_a_file_have_no_colour_codes() {
    let origin = Origin::start().await;
    let node = Node::spawn("", "plain-logs", &[]);
    node.wait_up().await;
    let r = get_image(&node, &origin.url("/img/plain.png"), &[]).await;
    assert_eq!(r.status(), 200);
    let logs = node.logs();
    assert!(
        logs.contains("request_id"),
        "no request log line in:\n{logs}"
    );
    assert!(!logs.contains('\u{1b}'), "escape codes in:\n{logs:?}");
}
