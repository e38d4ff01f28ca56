//! Keys derived from `CLUSTER_SECRET`.
//!
//! One human-chosen secret protects two different things (gossip datagrams
//! and gateway-to-worker requests). Using the raw secret for both would tie
//! them together, so each use gets its own 256-bit key from HKDF-SHA256 with
//! a distinct label: learning one key tells nothing about the other.

use std::sync::Arc;

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The per-purpose keys of a cluster, derived once at start-up.
#[derive(Clone)]
pub struct ClusterKeys {
    /// Seals and opens every gossip datagram (AEAD key).
    pub gossip: [u8; 32],
    /// Signs and verifies every internal HTTP request (HMAC key).
    pub request: [u8; 32],
    /// HMAC-SHA256 keyed with `request`, its key pads already hashed:
    /// every internal request is signed and checked, and keying an HMAC
    /// costs two SHA-256 blocks that are the same every time.
    pub request_mac: Arc<Hmac<Sha256>>,
}

impl ClusterKeys {
    /// Derives both keys from the shared secret.
    pub fn derive(secret: &str) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(b"img-proxy cluster v1"), secret.as_bytes());
        let mut gossip = [0u8; 32];
        let mut request = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's 8160-byte output limit, so
        // `expand` cannot fail here.
        hk.expand(b"gossip aead", &mut gossip)
            .expect("32 bytes is a valid HKDF output length");
        hk.expand(b"request hmac", &mut request)
            .expect("32 bytes is a valid HKDF output length");
        let request_mac = <Hmac<Sha256> as Mac>::new_from_slice(&request)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        ClusterKeys {
            gossip,
            request,
            request_mac: Arc::new(request_mac),
        }
    }
}

impl std::fmt::Debug for ClusterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterKeys(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_distinct_and_deterministic() {
        let a = ClusterKeys::derive("s3cret");
        let b = ClusterKeys::derive("s3cret");
        let c = ClusterKeys::derive("other");
        assert_eq!(a.gossip, b.gossip);
        assert_eq!(a.request, b.request);
        assert_ne!(a.gossip, a.request);
        assert_ne!(a.gossip, c.gossip);
    }
}
