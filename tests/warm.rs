//! `img-proxy warm` against a real node and a counting origin: it fills
//! the cache (a second run is all hits), signs when given a key, and
//! exits non-zero naming the URLs that failed.

mod common;

use std::path::PathBuf;
use std::process::Output;

use common::*;

/// Writes `lines` to a fresh URL list file.
fn url_file(lines: &[String]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("urls.txt");
    std::fs::write(&path, lines.join("\n")).unwrap();
    (dir, path)
}

/// Runs `img-proxy warm FILE --gateway NODE ARGS...` with `env`
/// (stderr is a pipe, not a terminal: plain progress lines).
async fn warm(node: &Node, file: &PathBuf, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = tokio::process::Command::new(binary());
    cmd.env_clear()
        .arg("warm")
        .arg(file)
        .args(["--gateway", &node.url("")])
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().await.unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_first_run_fills_the_cache_and_a_second_is_all_hits() {
    let origin = Origin::start().await;
    let node = Node::spawn("standalone", "solo", &[]);
    node.wait_up().await;
    let urls: Vec<String> = (0..3)
        .map(|i| origin.url(&format!("/img/w{i}.png")))
        .collect();
    let mut lines = vec!["# product images".to_string(), String::new()];
    lines.extend(urls.iter().cloned());
    lines.push(format!("  {}  ", urls[0]));
    let (_dir, file) = url_file(&lines);

    let first = warm(&node, &file, &["--concurrency", "2"], &[]).await;
    let (out, err) = text(&first);
    assert!(first.status.success(), "{out}{err}");
    assert!(out.contains("warmed 3 URLs in "), "{out}");
    assert!(out.contains("skipped 1 duplicate lines"), "{out}");
    assert!(out.contains("status: 200: 3\n"), "{out}");
    assert!(out.contains("cache: 0 hits, 3 misses"), "{out}");
    assert!(out.contains("slowest:") && out.contains(&urls[2]), "{out}");
    // stderr is not a terminal here: plain progress lines, the last at 100%.
    assert!(err.contains("warm: 3/3 (100%), "), "{err}");
    assert!(err.contains(", 0 failed"), "{err}");
    let bytes: u64 = out
        .split("bytes: ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(bytes, 3 * png("w0.png", 16, 12).len() as u64, "{out}");
    for i in 0..3 {
        assert_eq!(origin.hits(&format!("/img/w{i}.png")), 1);
    }

    let second = warm(&node, &file, &[], &[]).await;
    let (out, err) = text(&second);
    assert!(second.status.success(), "{out}{err}");
    assert!(out.contains("cache: 3 hits, 0 misses"), "{out}");
    assert_eq!(origin.total(), 3, "the second run reached no origin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_url_makes_a_non_zero_exit_that_names_it() {
    let origin = Origin::start().await;
    let node = Node::spawn("standalone", "solo", &[]);
    node.wait_up().await;
    let good = origin.url("/img/fine.png");
    let missing = origin.url("/status/404");
    let (_dir, file) = url_file(&[good.clone(), missing.clone()]);

    let run = warm(&node, &file, &[], &[]).await;
    let (out, err) = text(&run);
    assert_eq!(run.status.code(), Some(1), "{out}{err}");
    assert!(out.contains("status: 200: 1, 404: 1"), "{out}");
    assert!(err.contains("1 of 2 URLs failed"), "{err}");
    let line = err
        .lines()
        .find(|l| l.contains(&missing))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains("404"), "{line}");
    assert!(!err.contains(&good), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_are_signed_with_the_key_and_carry_the_options() {
    let key = "warm-test-signing-key-0123";
    let origin = Origin::start().await;
    let node = Node::spawn(
        "standalone",
        "solo",
        &[("URL_SIGNING_KEYS", key.to_string())],
    );
    node.wait_up().await;
    let source = origin.url("/img/signed.png");
    let (_dir, file) = url_file(std::slice::from_ref(&source));

    let unsigned = warm(&node, &file, &["w=8"], &[]).await;
    let (out, err) = text(&unsigned);
    assert_eq!(unsigned.status.code(), Some(1), "{out}{err}");
    assert!(err.contains(&format!("{source}: 403")), "{err}");

    let signed = warm(
        &node,
        &file,
        &["w=8"],
        &[("URL_SIGNING_KEYS", &format!("{key},other-key-0123456789"))],
    )
    .await;
    let (out, err) = text(&signed);
    assert!(signed.status.success(), "{out}{err}");
    assert!(out.contains("cache: 0 hits, 1 misses"), "{out}");
    // The variant asked for is the one now cached.
    let path = img_proxy::edge::signature::signed_path(
        key.as_bytes(),
        &source,
        &[("w".into(), "8".into())],
    );
    let r = client().get(node.url(&path)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-cache"), "HIT");
}
