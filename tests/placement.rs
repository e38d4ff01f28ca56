//! `img-proxy placement`: the side-by-side table of SHA-256 mod N and
//! rendezvous hashing.

mod common;

use common::*;

/// The figures of one scheme's row: max/mean, stddev %, join %, leave %.
fn row(out: &str, scheme: &str) -> Vec<f64> {
    let line = out
        .lines()
        .find(|l| l.starts_with(scheme))
        .unwrap_or_else(|| panic!("no {scheme} row in:\n{out}"));
    line[scheme.len()..]
        .split_whitespace()
        .map(|v| v.trim_end_matches('%').parse().unwrap())
        .collect()
}

#[test]
fn placement_compares_both_schemes() {
    let out = std::process::Command::new(binary())
        .args(["placement", "--workers", "3", "--keys", "30000"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("30000 keys over 3 workers"), "{text}");
    let modulo = row(&text, "SHA-256 mod N");
    let ours = row(&text, "rendezvous (xxh3)");
    // Join: 1/4 of the keys at best; leave: 1/3.
    assert!((ours[2] - 25.0).abs() < 2.0, "{text}");
    assert!((ours[3] - 33.3).abs() < 2.0, "{text}");
    assert!(modulo[2] > 60.0 && modulo[3] > 60.0, "{text}");
    assert!(ours[0] < 1.05 && modulo[0] < 1.05, "{text}");
}

#[test]
fn placement_refuses_a_single_worker() {
    let out = std::process::Command::new(binary())
        .args(["placement", "--workers", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--workers"));
}
