//! `DELETE /image?url=U`: removes every cached copy of `U` from the
//! cluster, for an administrator holding `ADMIN_TOKEN`.
//!
//! The gateway records the purge (`U`, now) in its purge list and in its
//! gossip state (see [`crate::cluster::purges`]), so that a worker that is
//! down now refuses its old copies when it comes back, then asks every live
//! worker to drop its copies at once (`DELETE /v1/cache?url=U&at=T`,
//! signed). It answers 200 `{"url": U, "removed": N}` once every live
//! worker confirmed, N being the entries removed in all, and every other
//! live gateway republished the record in its gossip state (it then refuses
//! its cached copies, see [`super::hot_cache`]); 502 names the workers and
//! gateways that did not confirm within their deadlines (the gossip record
//! still reaches them). Either way this gateway's own cache of hot images
//! has dropped the URL before the answer.

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use url::Url;

use super::internal::{endpoint, send, signed, LOOKUP_TIMEOUT};
use super::{Backends, Gateway};
use crate::cluster::keys::ClusterKeys;
use crate::cluster::membership::{Member, Membership};
use crate::cluster::purge_sync;
use crate::cluster::purges::unix_millis;
use crate::cluster::Role;
use crate::error::ApiError;
use crate::protocol::purge::parse_purge_query;
use crate::protocol::{RequestId, FILL_PATH};

/// Compares two tokens in time independent of where they differ: both are
/// hashed first, so lengths leak nothing either.
fn token_matches(given: &str, expected: &str) -> bool {
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Checks `Authorization: Bearer <ADMIN_TOKEN>`.
fn authorize(gw: &Gateway, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = gw.admin_token.as_deref() else {
        return Err(ApiError::PurgeDisabled);
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(token) if token_matches(token, expected) => Ok(()),
        _ => Err(ApiError::AdminToken),
    }
}

/// Handler of `DELETE /image`.
pub(super) async fn purge(
    State(gw): State<Arc<Gateway>>,
    Extension(request_id): Extension<RequestId>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let result = async {
        authorize(&gw, &headers)?;
        let (url, _) = parse_purge_query(query.as_deref())?;
        let removed = purge_everywhere(&gw, &url, &request_id).await;
        gw.hot.purge(url.as_str()).await;
        let removed = removed?;
        Ok::<_, ApiError>(Json(
            serde_json::json!({ "url": url.as_str(), "removed": removed }),
        ))
    }
    .await;
    match result {
        Ok(body) => body.into_response(),
        Err(e) => e.into_response(),
    }
}

/// Records the purge and applies it on every worker this gateway reaches.
async fn purge_everywhere(
    gw: &Arc<Gateway>,
    url: &Url,
    request_id: &RequestId,
) -> Result<usize, ApiError> {
    let at = SystemTime::now();
    match &gw.backends {
        Backends::Local(worker) => Ok(worker.purge(url, at).await),
        Backends::Cluster { membership, keys } => {
            let (key, value) = gw.purges.record(url.as_str(), at);
            membership.publish(&key, &value).await;
            let workers = membership.live_workers();
            let asks = workers
                .iter()
                .map(|w| purge_on(gw, keys, w, url, unix_millis(at), request_id));
            let gateways = other_gateways(membership);
            let heard = purge_sync::wait_heard(membership, gateways, &key, unix_millis(at));
            let (answers, unheard) = tokio::join!(futures::future::join_all(asks), heard);
            let mut removed = 0;
            let mut missing = unheard;
            for (worker, answer) in workers.iter().zip(answers) {
                match answer {
                    Some(n) => removed += n,
                    None => missing.push(worker.name.clone()),
                }
            }
            if missing.is_empty() {
                Ok(removed)
            } else {
                Err(ApiError::PurgeIncomplete(missing.join(", ")))
            }
        }
    }
}

/// The other live gateways: each must have heard the purge (and so stopped
/// serving its cached copies) before the purge answers.
fn other_gateways(membership: &Membership) -> Vec<String> {
    membership
        .live_members()
        .into_iter()
        .filter(|m| m.role == Role::Gateway && m.name != membership.self_name())
        .map(|m| m.name)
        .collect()
}

/// `DELETE /v1/cache` on one worker: the entries it removed, or `None` if
/// it did not confirm.
async fn purge_on(
    gw: &Gateway,
    keys: &ClusterKeys,
    worker: &Member,
    url: &Url,
    at_ms: u64,
    request_id: &RequestId,
) -> Option<usize> {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("url", url.as_str())
        .append_pair("at", &at_ms.to_string())
        .finish();
    let uri = endpoint(worker, &format!("{FILL_PATH}?{query}")).ok()?;
    let request = signed(
        keys,
        Method::DELETE,
        uri,
        Bytes::new(),
        request_id,
        LOOKUP_TIMEOUT,
    );
    let resp = send(gw, request).await.ok()?;
    if !resp.status.is_success() {
        return None;
    }
    let body: serde_json::Value = serde_json::from_slice(&resp.body).ok()?;
    body["removed"].as_u64().map(|n| n as usize)
}

#[cfg(test)]
mod tests {
    use super::token_matches;

    #[test]
    fn tokens_match_only_exactly() {
        assert!(token_matches("s3cret-token", "s3cret-token"));
        assert!(!token_matches("s3cret-tokeN", "s3cret-token"));
        assert!(!token_matches("s3cret", "s3cret-token"));
        assert!(!token_matches("", "s3cret-token"));
    }
}
