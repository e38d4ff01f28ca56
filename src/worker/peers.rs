//! The other workers, as this worker reaches them: peer fill on a miss and
//! hand-off on a graceful leave (see README, "Cache tiers").
//!
//! Both go to the same worker for a URL: the first in its rendezvous
//! ranking over the live workers other than this one. For the owner that is
//! the worker that owned the URL before this one joined (so a newcomer asks
//! the previous owner before going to the origin); for a worker that is
//! leaving it is the worker that owns the URL once it is gone.
//!
//! Requests are signed like a gateway's ([`crate::cluster::auth`]). A peer
//! fill is a `GET /v1/image` lookup, which a worker answers from its own
//! tiers only (never a fill, never another worker), so peer fills cannot
//! loop. A hand-off is `PUT /v1/cache` with the entry's bytes.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use reqwest::Method;
use url::Url;

use crate::cluster::auth;
use crate::cluster::keys::ClusterKeys;
use crate::cluster::membership::{Member, Membership};
use crate::cluster::placement;
use crate::error_chain::one_line;
use crate::pipeline::TransformOptions;
use crate::protocol::header::{CLUSTER_AUTH, X_STORED_AT};
use crate::protocol::{FILL_PATH, LOOKUP_PATH};

use super::unreachable_peers::UnreachablePeers;

/// How long a peer may take to start answering a lookup: a peer that is
/// slow or gone costs a miss this long at most before the origin fetch.
pub const PEER_FILL_DEADLINE: Duration = Duration::from_millis(250);
/// How long a peer's answer body may take once it started (images of
/// several MB on a busy network).
const PEER_BODY_DEADLINE: Duration = Duration::from_secs(2);
/// Deadline of one hand-off transfer.
const HANDOFF_REQUEST_DEADLINE: Duration = Duration::from_secs(3);

/// A copy of an entry held by a peer.
#[derive(Debug)]
pub struct PeerCopy {
    pub body: Bytes,
    /// When the peer fetched or made it, so freshness and purges apply to
    /// the copy as they did to the original.
    pub stored_at: SystemTime,
}

/// Why a peer did not help; logged at debug level, counted as a miss.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("{}", one_line(.0))]
    Transport(#[from] reqwest::Error),
    #[error("peer did not answer within {0:?}")]
    Timeout(Duration),
    #[error("peer answered {0}")]
    Status(u16),
    #[error("peer answer lacks a valid x-stored-at")]
    NoStoredAt,
    #[error("peer address {0} does not form a URL")]
    BadAddress(String),
    #[error("peer {0} is skipped for a while (it or a gateway found it unreachable)")]
    Skipped(String),
}

/// This worker's view of its peers.
pub struct Peers {
    membership: Arc<Membership>,
    keys: ClusterKeys,
    client: reqwest::Client,
    /// Peers not asked for copies for a while (frozen, per us or a gateway).
    unreachable: UnreachablePeers,
}

impl Peers {
    /// Peers found through `membership`, reached with requests signed
    /// under `keys`.
    pub fn new(membership: Arc<Membership>, keys: ClusterKeys) -> Result<Peers, reqwest::Error> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(PEER_FILL_DEADLINE)
            .pool_idle_timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Peers {
            membership,
            keys,
            client,
            unreachable: UnreachablePeers::default(),
        })
    }

    /// Not to ask `peer` for copies for a while: a gateway could not
    /// reach it.
    pub fn unreachable(&self, peer: &str) {
        self.unreachable.report(peer, Instant::now());
    }

    /// The worker that owns `url` when this one is left out: the previous
    /// owner for a newcomer, the next owner for a leaving worker.
    pub fn successor(&self, url: &str) -> Option<Member> {
        let me = self.membership.self_name();
        let others: Vec<Member> = self
            .membership
            .live_workers()
            .into_iter()
            .filter(|m| m.name != me)
            .collect();
        successor_of(url, &others).cloned()
    }

    /// Asks `url`'s successor for its cached copy of `url` with `opts`:
    /// `Ok(None)` when it has none (or there is no other worker).
    pub async fn lookup(
        &self,
        url: &Url,
        opts: &TransformOptions,
    ) -> Result<Option<PeerCopy>, PeerError> {
        let Some(peer) = self.successor(url.as_str()) else {
            return Ok(None);
        };
        if self.unreachable.skipped(&peer.name, Instant::now()) {
            return Err(PeerError::Skipped(peer.name));
        }
        let target = endpoint(&peer, LOOKUP_PATH, url, &opts.to_query())?;
        let send = self.signed(Method::GET, target, Bytes::new()).send();
        let Ok(resp) = tokio::time::timeout(PEER_FILL_DEADLINE, send).await else {
            self.unreachable.report(&peer.name, Instant::now());
            return Err(PeerError::Timeout(PEER_FILL_DEADLINE));
        };
        let resp = resp?;
        match resp.status().as_u16() {
            200 => {}
            404 => return Ok(None),
            other => return Err(PeerError::Status(other)),
        }
        let stored_at = stored_at_header(&resp).ok_or(PeerError::NoStoredAt)?;
        let body = tokio::time::timeout(PEER_BODY_DEADLINE, resp.bytes())
            .await
            .map_err(|_| PeerError::Timeout(PEER_BODY_DEADLINE))??;
        Ok(Some(PeerCopy { body, stored_at }))
    }

    /// Sends one entry (`url` with the options of `options_query`, the
    /// cache key's option part) to `peer`; `Ok(true)` when it stored it.
    pub async fn hand_off(
        &self,
        peer: &Member,
        url: &str,
        options_query: &str,
        copy: &PeerCopy,
        content_type: &str,
    ) -> Result<bool, PeerError> {
        let pairs: Vec<(&str, String)> = url::form_urlencoded::parse(options_query.as_bytes())
            .map(|(k, v)| (k, v.into_owned()))
            .map(|(k, v)| (static_name(&k), v))
            .filter(|(k, _)| !k.is_empty())
            .collect();
        let source = Url::parse(url).map_err(|_| PeerError::BadAddress(url.to_string()))?;
        let target = endpoint(peer, FILL_PATH, &source, &pairs)?;
        let resp = self
            .signed(Method::PUT, target, copy.body.clone())
            .header(X_STORED_AT, unix_ms(copy.stored_at).to_string())
            .header("content-type", content_type)
            .timeout(HANDOFF_REQUEST_DEADLINE)
            .send()
            .await?;
        match resp.status().as_u16() {
            200 => {
                let v: serde_json::Value = resp.json().await?;
                Ok(v["stored"] == true)
            }
            other => Err(PeerError::Status(other)),
        }
    }

    /// A request to a peer with the cluster signature.
    fn signed(&self, method: Method, url: Url, body: Bytes) -> reqwest::RequestBuilder {
        let path_and_query = match url.query() {
            Some(q) => format!("{}?{}", url.path(), q),
            None => url.path().to_string(),
        };
        let signature = auth::sign(
            &self.keys,
            method.as_str(),
            &path_and_query,
            &body,
            auth::unix_now(),
        );
        let req = self
            .client
            .request(method, url)
            .header(CLUSTER_AUTH, signature);
        if body.is_empty() {
            req
        } else {
            req.body(body)
        }
    }
}

/// The first of `others` in `url`'s rendezvous order.
fn successor_of<'a>(url: &str, others: &'a [Member]) -> Option<&'a Member> {
    placement::rank(url, others, |m| m.name.as_str())
        .into_iter()
        .next()
}

/// `http://<peer><path>?url=<url>&<options>`.
fn endpoint(
    peer: &Member,
    path: &str,
    url: &Url,
    options: &[(&str, String)],
) -> Result<Url, PeerError> {
    let base = format!("http://{}{path}", peer.http_addr);
    let mut target = Url::parse(&base).map_err(|_| PeerError::BadAddress(base.clone()))?;
    {
        let mut q = target.query_pairs_mut();
        q.append_pair("url", url.as_str());
        for (k, v) in options {
            q.append_pair(k, v);
        }
    }
    Ok(target)
}

/// Option names as `&'static str` (the ones a cache key can hold); an
/// unknown name becomes empty and is dropped.
fn static_name(name: &str) -> &'static str {
    const NAMES: [&str; 7] = ["w", "h", "fit", "q", "format", "blur", "sharpen"];
    NAMES.into_iter().find(|n| *n == name).unwrap_or("")
}

/// The `x-stored-at` header (Unix milliseconds) of a peer's answer.
fn stored_at_header(resp: &reqwest::Response) -> Option<SystemTime> {
    let ms = resp.headers().get(X_STORED_AT)?.to_str().ok()?;
    parse_unix_ms(ms)
}

/// Unix milliseconds to a time.
pub fn parse_unix_ms(ms: &str) -> Option<SystemTime> {
    let ms: u64 = ms.trim().parse().ok()?;
    UNIX_EPOCH.checked_add(Duration::from_millis(ms))
}

/// A time as Unix milliseconds.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Role;

    fn member(name: &str) -> Member {
        Member {
            name: name.to_string(),
            role: Role::Worker,
            http_addr: "127.0.0.1:1".parse().unwrap(),
            gossip_addr: "127.0.0.1:2".parse().unwrap(),
        }
    }

    /// For every key a newcomer takes, the successor it asks (itself left
    /// out) is the owner before it joined; for a leaver, the successor is
    /// the owner after it left.
    #[test]
    fn the_successor_is_the_owner_without_this_worker() {
        let old: Vec<Member> = ["a", "b", "c"].into_iter().map(member).collect();
        let mut all = old.clone();
        all.push(member("new"));
        let mut moved = 0;
        for i in 0..2000 {
            let url = format!("https://img.example/{i}.png");
            let names: Vec<String> = all.iter().map(|m| m.name.clone()).collect();
            let owner_now = placement::owner(&url, &names).unwrap();
            let names_before: Vec<String> = old.iter().map(|m| m.name.clone()).collect();
            let owner_before = placement::owner(&url, &names_before).unwrap();
            if owner_now == "new" {
                moved += 1;
                let asked = successor_of(&url, &old).unwrap();
                assert_eq!(&asked.name, owner_before, "{url}");
            }
        }
        assert!(moved > 300, "{moved} keys moved to the newcomer");
        assert!(successor_of("https://x/", &[]).is_none());
    }

    #[test]
    fn times_round_trip_in_milliseconds() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_123_456);
        assert_eq!(parse_unix_ms(&unix_ms(t).to_string()), Some(t));
        assert_eq!(parse_unix_ms("soon"), None);
    }

    #[test]
    fn option_names_of_a_cache_key_are_kept_and_others_dropped() {
        assert_eq!(static_name("w"), "w");
        assert_eq!(static_name("sharpen"), "sharpen");
        assert_eq!(static_name("url"), "");
    }
}
