//! Keeps this node's [`PurgeList`] and its gossip state in step with the
//! cluster (see [`super::purges`] for the design).
//!
//! On every change of any live node's state: adopt purge records we did not
//! know, and publish them in our own state so they outlive the node that
//! made them. Every minute: drop records past their lifetime from both.
//! The list is marked synced once we have seen another node's state, so a
//! worker restarted from its disk tier knows the cluster's purges before it
//! serves anything from disk.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tracing::debug;

use super::membership::Membership;
use super::purges::{PurgeList, KEY_PREFIX};

/// How often expired records are dropped.
const EXPIRE_EVERY: Duration = Duration::from_secs(60);

/// How long a purge waits for the other gateways to republish its record.
pub const HEARD_WAIT: Duration = Duration::from_secs(3);

/// Runs until the membership's gossip stops.
pub async fn run(membership: Arc<Membership>, purges: Arc<PurgeList>) {
    let mut states = membership.states().await;
    let mut expire = tokio::time::interval(EXPIRE_EVERY);
    loop {
        tokio::select! {
            changed = states.changed() => {
                if changed.is_err() {
                    return;
                }
                let news = adopt(&states.borrow_and_update(), membership.self_name(), &purges);
                for (key, value) in news {
                    membership.publish(&key, &value).await;
                }
            }
            _ = expire.tick() => {
                for key in purges.expire(SystemTime::now()) {
                    debug!(key, "purge record expired");
                    membership.unpublish(&key).await;
                }
            }
        }
    }
}

/// Merges every purge record of the other nodes' states into `purges`;
/// returns the ones that were news, to publish. Marks the list synced once
/// another node's state has been seen.
fn adopt(
    states: &std::collections::BTreeMap<chitchat::ChitchatId, chitchat::NodeState>,
    self_name: &str,
    purges: &PurgeList,
) -> Vec<(String, String)> {
    let mut news = Vec::new();
    for (id, state) in states {
        if &*id.node_id == self_name {
            continue;
        }
        purges.mark_synced();
        for (key, value) in state.iter_prefix(KEY_PREFIX) {
            if purges.merge(key, value.value.as_str()) {
                news.push((key.to_string(), value.value.clone()));
            }
        }
    }
    news
}

/// Waits until every node of `names` publishes the purge record `key` at
/// `at_ms` or later in its gossip state, at most [`HEARD_WAIT`]; returns
/// the nodes that did not. A node publishes a record only after adopting
/// it (see [`adopt`]), so from then on it refuses what the purge covers:
/// this is how a purging gateway knows that no other gateway still serves
/// the old bytes from its own cache.
pub async fn wait_heard(
    membership: &Membership,
    names: Vec<String>,
    key: &str,
    at_ms: u64,
) -> Vec<String> {
    let mut states = membership.states().await;
    let deadline = tokio::time::Instant::now() + HEARD_WAIT;
    loop {
        let missing: Vec<String> = {
            let states = states.borrow_and_update();
            names
                .iter()
                .filter(|name| !published(&states, name, key, at_ms))
                .cloned()
                .collect()
        };
        if missing.is_empty() {
            return missing;
        }
        match tokio::time::timeout_at(deadline, states.changed()).await {
            Ok(Ok(())) => continue,
            _ => return missing,
        }
    }
}

/// Whether node `name` publishes purge record `key` at `at_ms` or later.
fn published(
    states: &std::collections::BTreeMap<chitchat::ChitchatId, chitchat::NodeState>,
    name: &str,
    key: &str,
    at_ms: u64,
) -> bool {
    states.iter().any(|(id, state)| {
        &*id.node_id == name
            && state
                .iter_prefix(key)
                .any(|(k, v)| k == key && v.value.parse::<u64>().is_ok_and(|ms| ms >= at_ms))
    })
}
