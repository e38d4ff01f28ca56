//! Authentication of gateway-to-worker requests.
//!
//! Workers must only do work for gateways of their own cluster: otherwise
//! anyone who can reach a worker could use it as an open fetcher. Every
//! internal request carries `X-Cluster-Auth: t=<unix seconds>,s=<hex>`, an
//! HMAC-SHA256 under a key derived from `CLUSTER_SECRET` over the method,
//! path and query, timestamp and a hash of the body. A worker refuses (401)
//! a missing, malformed or wrong signature, or one older than
//! [`MAX_SKEW_SECS`], so a captured request cannot be replayed for long.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::keys::ClusterKeys;

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
}

fn mac(keys: &ClusterKeys, method: &str, path_and_query: &str, body: &[u8], ts: u64) -> HmacSha256 {
    // new_from_slice accepts any key length for HMAC; 32 bytes always works.
    let mut m = <HmacSha256 as Mac>::new_from_slice(&keys.request)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    m.update(method.as_bytes());
    m.update(b"\n");
    m.update(path_and_query.as_bytes());
    m.update(b"\n");
    m.update(ts.to_string().as_bytes());
    m.update(b"\n");
    m.update(&Sha256::digest(body));
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
    let tag = mac(keys, method, path_and_query, body, now)
        .finalize()
        .into_bytes();
    format!("t={now},s={}", hex::encode(tag))
}

/// Checks a header value against the request it came with.
pub fn verify(
    keys: &ClusterKeys,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    header: Option<&str>,
    now: u64,
) -> Result<(), AuthError> {
    let header = header.ok_or(AuthError::Missing)?;
    let mut ts = None;
    let mut sig = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => ts = v.parse::<u64>().ok(),
            Some(("s", v)) => sig = hex::decode(v).ok(),
            _ => return Err(AuthError::Malformed),
        }
    }
    let (ts, sig) = ts.zip(sig).ok_or(AuthError::Malformed)?;
    if ts.abs_diff(now) > MAX_SKEW_SECS {
        return Err(AuthError::Stale);
    }
    mac(keys, method, path_and_query, body, ts)
        .verify_slice(&sig)
        .map_err(|_| AuthError::BadSignature)
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

    #[test]
    fn signed_requests_verify_and_tampering_fails() {
        let k = ClusterKeys::derive("a-long-enough-secret");
        let h = sign(&k, "POST", "/v1/cache", b"{\"url\":\"x\"}", 1000);
        assert_eq!(
            verify(&k, "POST", "/v1/cache", b"{\"url\":\"x\"}", Some(&h), 1010),
            Ok(())
        );
        assert_eq!(
            verify(&k, "POST", "/v1/cache", b"{\"url\":\"y\"}", Some(&h), 1010),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            verify(&k, "GET", "/v1/cache", b"{\"url\":\"x\"}", Some(&h), 1010),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            verify(&k, "POST", "/v1/cache", b"{\"url\":\"x\"}", Some(&h), 2000),
            Err(AuthError::Stale)
        );
        let other = ClusterKeys::derive("another-long-secret");
        assert_eq!(
            verify(
                &other,
                "POST",
                "/v1/cache",
                b"{\"url\":\"x\"}",
                Some(&h),
                1000
            ),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            verify(&k, "GET", "/", b"", None, 0),
            Err(AuthError::Missing)
        );
        assert_eq!(
            verify(&k, "GET", "/", b"", Some("garbage"), 0),
            Err(AuthError::Malformed)
        );
        assert_eq!(
            verify(&k, "GET", "/", b"", Some("t=1,s=zz"), 0),
            Err(AuthError::Malformed)
        );
    }
}
