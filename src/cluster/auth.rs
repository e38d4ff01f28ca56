//! Authentication of gateway-to-worker requests.
//!
//! Workers must only do work for gateways of their own cluster: otherwise
//! anyone who can reach a worker could use it as an open fetcher. Every
//! internal request carries `X-Cluster-Auth: t=<unix seconds>,n=<hex>,s=<hex>`,
//! an HMAC-SHA256 under a key derived from `CLUSTER_SECRET` over the
//! method, path and query, timestamp, a random 128-bit nonce and a hash of
//! the body. A worker refuses (401) a missing, malformed or wrong
//! signature, one older than [`MAX_SKEW_SECS`], and one whose nonce it has
//! already accepted ([`NonceWindow`]): a captured request cannot be
//! replayed, neither later nor within its window.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::keys::ClusterKeys;
use super::replay::{NonceWindow, Replay};

/// Bytes of random nonce in each signature.
pub const NONCE_LEN: usize = 16;

/// Nonces a worker remembers: a minute of requests at over 4,000 per
/// second (about 40 MB at worst).
pub const NONCE_CAPACITY: usize = 262_144;

/// The replay window a worker keeps for internal requests.
pub fn nonce_window() -> NonceWindow {
    NonceWindow::new(MAX_SKEW_SECS * 1000, NONCE_CAPACITY)
}

/// The header that carries the signature.
pub const AUTH_HEADER: &str = "x-cluster-auth";

/// How far a request's timestamp may be from the worker's clock.
pub const MAX_SKEW_SECS: u64 = 60;

type HmacSha256 = Hmac<Sha256>;

/// Why a request was refused; the message goes into the 401 body.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing cluster credentials")]
    Missing,
    #[error("malformed cluster credentials")]
    Malformed,
    #[error("cluster credentials expired or from the future")]
    Stale,
    #[error("invalid cluster credentials")]
    BadSignature,
    #[error("cluster credentials already used (replayed request)")]
    Replayed,
}

impl AuthError {
    /// Short stable label for `img_proxy_requests_refused_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            AuthError::Missing => "auth_missing",
            AuthError::Malformed => "auth_malformed",
            AuthError::Stale => "auth_stale",
            AuthError::BadSignature => "auth_bad_signature",
            AuthError::Replayed => "auth_replayed",
        }
    }
}

/// What a signature covers besides the keys.
struct Signed<'a> {
    method: &'a str,
    path_and_query: &'a str,
    body: &'a [u8],
    ts: u64,
    nonce: &'a [u8],
}

fn mac(keys: &ClusterKeys, s: &Signed<'_>) -> HmacSha256 {
    let mut m = HmacSha256::clone(&keys.request_mac);
    m.update(s.method.as_bytes());
    m.update(b"\n");
    m.update(s.path_and_query.as_bytes());
    m.update(b"\n");
    m.update(s.ts.to_string().as_bytes());
    m.update(b"\n");
    m.update(s.nonce);
    m.update(b"\n");
    m.update(&Sha256::digest(s.body));
    m
}

/// The header value for a request signed at `now` (unix seconds).
pub fn sign(
    keys: &ClusterKeys,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    now: u64,
) -> String {
    let mut nonce = [0u8; NONCE_LEN];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut nonce);
    let signed = Signed {
        method,
        path_and_query,
        body,
        ts: now,
        nonce: &nonce,
    };
    let tag = mac(keys, &signed).finalize().into_bytes();
    format!("t={now},n={},s={}", hex::encode(nonce), hex::encode(tag))
}

/// Checks a header value against the request it came with, and accepts
/// its nonce once in `seen`. The signature is checked before the nonce is
/// remembered, so forgeries cannot fill the window.
pub fn verify(
    keys: &ClusterKeys,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    header: Option<&str>,
    now: u64,
    seen: &NonceWindow,
) -> Result<(), AuthError> {
    let header = header.ok_or(AuthError::Missing)?;
    let (mut ts, mut nonce, mut sig) = (None, None, None);
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => ts = v.parse::<u64>().ok(),
            Some(("n", v)) => nonce = hex::decode(v).ok().filter(|n| n.len() == NONCE_LEN),
            Some(("s", v)) => sig = hex::decode(v).ok(),
            _ => return Err(AuthError::Malformed),
        }
    }
    let (Some(ts), Some(nonce), Some(sig)) = (ts, nonce, sig) else {
        return Err(AuthError::Malformed);
    };
    if ts.abs_diff(now) > MAX_SKEW_SECS {
        return Err(AuthError::Stale);
    }
    let signed = Signed {
        method,
        path_and_query,
        body,
        ts,
        nonce: &nonce,
    };
    mac(keys, &signed)
        .verify_slice(&sig)
        .map_err(|_| AuthError::BadSignature)?;
    seen.check(&nonce, ts * 1000, now * 1000)
        .map_err(|r| match r {
            Replay::Stale => AuthError::Stale,
            Replay::Seen => AuthError::Replayed,
        })
}

/// Seconds since the Unix epoch, for signing and verifying.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"{\"url\":\"x\"}";

    fn check(
        k: &ClusterKeys,
        method: &str,
        body: &[u8],
        h: Option<&str>,
        now: u64,
    ) -> Result<(), AuthError> {
        verify(k, method, "/v1/cache", body, h, now, &nonce_window())
    }

    #[test]
    fn signed_requests_verify_and_tampering_fails() {
        let k = ClusterKeys::derive("a-long-enough-secret");
        let h = sign(&k, "POST", "/v1/cache", BODY, 1000);
        assert_eq!(check(&k, "POST", BODY, Some(&h), 1010), Ok(()));
        assert_eq!(
            check(&k, "POST", b"{}", Some(&h), 1010),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            check(&k, "GET", BODY, Some(&h), 1010),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            check(&k, "POST", BODY, Some(&h), 2000),
            Err(AuthError::Stale)
        );
        let other = ClusterKeys::derive("another-long-secret");
        assert_eq!(
            check(&other, "POST", BODY, Some(&h), 1000),
            Err(AuthError::BadSignature)
        );
        assert_eq!(check(&k, "GET", b"", None, 0), Err(AuthError::Missing));
        assert_eq!(
            check(&k, "GET", b"", Some("garbage"), 0),
            Err(AuthError::Malformed)
        );
        assert_eq!(
            check(&k, "GET", b"", Some("t=1,s=zz"), 0),
            Err(AuthError::Malformed)
        );
        let no_nonce = format!("t=1000,s={}", h.rsplit("s=").next().unwrap_or(""));
        assert_eq!(
            check(&k, "POST", BODY, Some(&no_nonce), 1000),
            Err(AuthError::Malformed)
        );
        // Another nonce under the same signature: the nonce is signed.
        let n = h.find("n=").map_or(0, |i| i + 2);
        let forged = format!(
            "{}{}{}",
            &h[..n],
            "00".repeat(NONCE_LEN),
            &h[n + 2 * NONCE_LEN..]
        );
        assert_eq!(
            check(&k, "POST", BODY, Some(&forged), 1000),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn a_request_verifies_once() {
        let k = ClusterKeys::derive("a-long-enough-secret");
        let seen = nonce_window();
        let h = sign(&k, "POST", "/v1/cache", BODY, 1000);
        assert_eq!(
            verify(&k, "POST", "/v1/cache", BODY, Some(&h), 1001, &seen),
            Ok(())
        );
        assert_eq!(
            verify(&k, "POST", "/v1/cache", BODY, Some(&h), 1002, &seen),
            Err(AuthError::Replayed)
        );
        // The same request signed again has a fresh nonce.
        let again = sign(&k, "POST", "/v1/cache", BODY, 1000);
        assert_eq!(
            verify(&k, "POST", "/v1/cache", BODY, Some(&again), 1002, &seen),
            Ok(())
        );
    }
}
