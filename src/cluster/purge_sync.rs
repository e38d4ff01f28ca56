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
