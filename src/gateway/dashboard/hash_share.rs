//! Each worker's share of the hash space, measured rather than assumed.
//!
//! Rendezvous hashing gives every worker the same expected share, 1/N;
//! the real split of a finite key set deviates from it. The dashboard
//! places a fixed set of synthetic URLs with the gateways' own placement
//! function and reports the fraction each worker owns: a figure that
//! changes exactly as routing does when workers join or leave.

use std::collections::HashMap;

use crate::cluster::placement;

/// Sampled keys: enough for about 1.5% precision per worker at N = 3,
/// cheap to place (4096 x N short hashes).
pub const SAMPLE_KEYS: usize = 4096;

/// The fraction of [`SAMPLE_KEYS`] synthetic URLs each of `workers` owns.
pub fn shares(workers: &[String]) -> HashMap<String, f64> {
    let mut owned: HashMap<String, usize> = HashMap::new();
    for i in 0..SAMPLE_KEYS {
        let key = format!("https://hash-share.sample.invalid/{i}.jpg");
        if let Some(owner) = placement::owner(&key, workers) {
            *owned.entry(owner.clone()).or_default() += 1;
        }
    }
    workers
        .iter()
        .map(|w| {
            let n = owned.get(w).copied().unwrap_or(0);
            (w.clone(), n as f64 / SAMPLE_KEYS as f64)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_and_are_near_fair() {
        let workers: Vec<String> = (0..3).map(|i| format!("worker-{i}")).collect();
        let s = shares(&workers);
        let total: f64 = s.values().sum();
        assert!((total - 1.0).abs() < 1e-9, "{s:?}");
        for (w, share) in &s {
            assert!((share - 1.0 / 3.0).abs() < 0.05, "{w}: {share}");
            assert!(*share != 1.0 / 3.0, "a measured share, not 1/N");
        }
        assert_eq!(shares(&workers[..1])["worker-0"], 1.0);
        assert!(shares(&[]).is_empty());
    }
}
