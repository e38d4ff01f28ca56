//! `img-proxy placement --workers N --keys K`: why the cluster uses
//! rendezvous hashing, measured.
//!
//! The obvious scheme, `SHA-256(url) mod N`, spreads keys evenly too, but
//! changing N renumbers almost every key: when a worker joins or leaves,
//! nearly the whole cache misses at once. Rendezvous hashing (what the
//! gateways run, [`super::placement`]) moves only the keys the new worker
//! wins, about 1/(N+1), or the leaving worker's own, about 1/N. This
//! command computes both side by side on synthetic URLs, so the claim in
//! the README can be re-checked on any machine.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use super::placement;

/// Arguments of `img-proxy placement`.
#[derive(Debug, Clone, clap::Args)]
pub struct PlacementArgs {
    /// Number of workers (2..=1000).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(2..=1000))]
    pub workers: u32,
    /// Number of synthetic keys (image URLs) to place (1..=10000000).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub keys: u32,
}

/// A way to pick a worker for a key among `workers`.
type Scheme = fn(&str, &[String]) -> usize;

/// The seed's scheme: the first 8 bytes of SHA-256, modulo N.
fn sha256_mod(key: &str, workers: &[String]) -> usize {
    let digest = Sha256::digest(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % workers.len() as u64) as usize
}

/// Ours: the top-ranked worker.
fn rendezvous(key: &str, workers: &[String]) -> usize {
    let ranked = placement::rank(key, workers, |w| w.as_str());
    let owner = ranked.first().map_or("", |w| w.as_str());
    workers.iter().position(|w| w == owner).unwrap_or(0)
}

/// What one scheme does with `keys` over `n` workers.
#[derive(Debug, Clone, PartialEq)]
pub struct Spread {
    /// The busiest worker's keys over the mean (1.0 is perfect).
    pub max_over_mean: f64,
    /// Standard deviation of keys per worker, as a fraction of the mean.
    pub relative_stddev: f64,
    /// Fraction of keys whose owner changes when worker N+1 joins.
    pub moved_on_join: f64,
    /// Fraction of keys whose owner changes when the last worker leaves.
    pub moved_on_leave: f64,
}

/// Places every key with `scheme` over `n` workers, then over `n + 1` and
/// `n - 1`, and compares.
pub fn measure(scheme: Scheme, n: usize, keys: &[String]) -> Spread {
    let names: Vec<String> = (1..=n + 1).map(|i| format!("worker-{i}")).collect();
    let owner = |key: &str, count: usize| names[scheme(key, &names[..count])].as_str();
    let mut per_worker = vec![0usize; n];
    let (mut joined, mut left) = (0usize, 0usize);
    for key in keys {
        let now = owner(key, n);
        if let Some(i) = names[..n].iter().position(|w| w == now) {
            per_worker[i] += 1;
        }
        joined += usize::from(owner(key, n + 1) != now);
        left += usize::from(owner(key, n - 1) != now);
    }
    let mean = keys.len() as f64 / n as f64;
    let max = per_worker.iter().copied().max().unwrap_or(0) as f64;
    let variance = per_worker
        .iter()
        .map(|&c| (c as f64 - mean).powi(2))
        .sum::<f64>()
        / n as f64;
    Spread {
        max_over_mean: max / mean,
        relative_stddev: variance.sqrt() / mean,
        moved_on_join: joined as f64 / keys.len() as f64,
        moved_on_leave: left as f64 / keys.len() as f64,
    }
}

/// Synthetic image URLs, the kind of key gateways route.
pub fn synthetic_keys(count: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("https://img{}.example.com/photos/{i}.jpg", i % 97))
        .collect()
}

/// The side-by-side table `img-proxy placement` prints.
pub fn report(args: &PlacementArgs) -> String {
    let n = args.workers as usize;
    let keys = synthetic_keys(args.keys as usize);
    let mut out = String::new();
    let _ = writeln!(out, "{} keys over {n} workers", keys.len());
    let _ = writeln!(
        out,
        "{:<24} {:>12} {:>12} {:>16} {:>17}",
        "scheme", "max/mean", "stddev/mean", "moved on join", "moved on leave"
    );
    let schemes: [(&str, Scheme); 2] = [
        ("SHA-256 mod N", sha256_mod),
        ("rendezvous (xxh3)", rendezvous),
    ];
    for (name, scheme) in schemes {
        let s = measure(scheme, n, &keys);
        let _ = writeln!(
            out,
            "{name:<24} {:>12.3} {:>11.1}% {:>15.1}% {:>16.1}%",
            s.max_over_mean,
            s.relative_stddev * 100.0,
            s.moved_on_join * 100.0,
            s.moved_on_leave * 100.0
        );
    }
    let _ = writeln!(
        out,
        "{:<24} {:>12.3} {:>11.1}% {:>15.1}% {:>16.1}%",
        "least possible",
        1.0,
        0.0,
        100.0 / (n + 1) as f64,
        100.0 / n as f64
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendezvous_moves_about_one_share_on_join_and_leave() {
        let keys = synthetic_keys(20_000);
        let s = measure(rendezvous, 4, &keys);
        assert!((s.moved_on_join - 0.2).abs() < 0.02, "{s:?}");
        assert!((s.moved_on_leave - 0.25).abs() < 0.02, "{s:?}");
        assert!(s.max_over_mean < 1.05, "{s:?}");
    }

    #[test]
    fn modulo_moves_almost_everything() {
        let keys = synthetic_keys(20_000);
        let s = measure(sha256_mod, 4, &keys);
        assert!(s.moved_on_join > 0.75, "{s:?}");
        assert!(s.moved_on_leave > 0.70, "{s:?}");
        assert!(s.max_over_mean < 1.05, "{s:?}");
    }

    #[test]
    fn both_schemes_give_every_key_an_owner() {
        let keys = synthetic_keys(1000);
        let names: Vec<String> = (1..=3).map(|i| format!("worker-{i}")).collect();
        for key in &keys {
            assert!(sha256_mod(key, &names) < 3);
            assert!(rendezvous(key, &names) < 3);
        }
    }
}
