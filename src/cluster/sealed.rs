//! Authenticated, encrypted UDP transport for chitchat gossip.
//!
//! Gossip carries who is in the cluster and where their HTTP ports are; a
//! forged datagram could add a rogue "worker" that gateways would then send
//! traffic to, and chitchat's own decoder and state machine were written for
//! trusted peers (some malformed states end in `assert!`). So every datagram
//! is sealed with XChaCha20-Poly1305 under the cluster's gossip key, and
//! anything that does not open is dropped before chitchat sees a byte of it.
//!
//! Wire format of one datagram:
//!
//! ```text
//! nonce (24 bytes, random per datagram) || ciphertext || Poly1305 tag (16 bytes)
//! ```
//!
//! The plaintext is the sender's clock (unix milliseconds, 8 bytes
//! big-endian) followed by the chitchat message in chitchat's own encoding
//! ([`Serializable`]/[`Deserializable`]). The associated data is a fixed
//! label, so a future incompatible format can change the label and old and
//! new nodes will simply not hear each other instead of misparsing.
//!
//! Random 192-bit nonces make reuse under one key negligible without any
//! counter state to persist across restarts (the reason for XChaCha rather
//! than ChaCha20-Poly1305 with its 96-bit nonce).
//!
//! Replays: a receiver accepts a datagram only if its timestamp is within
//! [`REPLAY_WINDOW_MS`] of its own clock and its nonce has not been
//! accepted before in that window ([`NonceWindow`]). A captured datagram
//! re-sent later is stale, re-sent at once is a repeated nonce; both are
//! dropped and counted like forgeries. Nodes' clocks must agree within the
//! window (NTP), as they must for signed internal requests.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_trait::async_trait;
use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{KeyInit, Tag, XChaCha20Poly1305, XNonce};
use chitchat::transport::{Socket, Transport};
use chitchat::{ChitchatMessage, Deserializable, Serializable};
use prometheus_client::metrics::counter::Counter;
use rand::RngCore;
use tracing::{debug, warn};

use super::replay::{unix_millis, NonceWindow, Replay};

/// Bytes of random nonce in front of every datagram.
pub const NONCE_LEN: usize = 24;
/// Bytes of Poly1305 tag at the end of every datagram.
pub const TAG_LEN: usize = 16;
/// Bytes the seal adds to a chitchat message (nonce, timestamp, tag).
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TIMESTAMP_LEN + TAG_LEN;

/// Largest datagram we ever hand to the kernel.
///
/// 65 507 = 65 535 (IPv4 total length) - 20 (IPv4 header) - 8 (UDP header),
/// the largest UDP payload an IPv4 socket can send (IPv6 allows 65 527; we
/// use the smaller bound for both so behaviour does not depend on family).
///
/// Headroom: chitchat sizes a reply's delta so that the *plain* message fits
/// its own `MAX_UDP_DATAGRAM_PAYLOAD_SIZE`, which is also 65 507 (and 0.11
/// reserves 1 byte for what is a 4-byte header, so a full message can reach
/// 65 510). That budget is a private constant we cannot lower, so a full
/// message plus our 40 bytes can exceed what the socket accepts. Such a
/// message is refused here (logged, never sent) instead of failing in the
/// kernel. It only happens when a single digest or delta is ~64 KiB:
/// digests cost ~50 bytes per member and deltas (zstd-compressed) less per
/// member, i.e. clusters of many hundreds of members, far beyond img-proxy's
/// scale. Supporting that would need fragmentation, which we do not do.
pub const MAX_SEALED_DATAGRAM: usize = 65_507;

/// Largest plain chitchat message that still fits once sealed.
pub const MAX_PLAINTEXT: usize = MAX_SEALED_DATAGRAM - SEAL_OVERHEAD;

/// Receive buffer size: the largest UDP payload any socket can deliver
/// (IPv6, 65 527) rounded up, so an oversized datagram is seen whole and
/// rejected rather than silently truncated into a tag failure we could not
/// explain.
const RECV_BUFFER_LEN: usize = 65_536;

/// Associated data bound into every seal: names the protocol and its
/// version. v2 added the timestamp; v1 nodes and v2 nodes do not hear
/// each other (upgrade every node of a cluster together).
const AAD: &[u8] = b"img-proxy gossip v2";

/// Bytes of sender timestamp at the start of the plaintext.
pub const TIMESTAMP_LEN: usize = 8;

/// How far a datagram's timestamp may be from the receiver's clock.
pub const REPLAY_WINDOW_MS: u64 = 30_000;

/// Nonces remembered per socket: far more than a window of gossip among
/// hundreds of nodes, small in memory (about 4 MB at worst).
const REPLAY_CAPACITY: usize = 65_536;

/// At most one warning per this period per socket for rejected datagrams;
/// the rest go to debug. A stray sender (or a node with an old secret) would
/// otherwise flood the log at gossip rate.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// A chitchat [`Transport`] whose datagrams are sealed with the cluster key.
///
/// Why a transport and not a layer around the socket: chitchat hands the
/// transport whole messages, so sealing one message per datagram keeps
/// chitchat's own loss handling (it tolerates dropped datagrams) intact.
pub struct SealedTransport {
    cipher: Arc<XChaCha20Poly1305>,
    rejected: Counter,
    /// A socket bound ahead of time by the caller, handed out by the first
    /// `open` on its address. Lets [`crate::cluster::membership`] report a
    /// bind failure with its own clear error and learn an OS-chosen port.
    prebound: Mutex<Option<tokio::net::UdpSocket>>,
}

impl SealedTransport {
    /// Builds a transport sealing with `key` (`ClusterKeys::gossip`).
    ///
    /// `rejected` counts every datagram dropped because it did not open or
    /// did not decode: a steadily rising value means a misconfigured node
    /// (wrong secret) or someone probing the gossip port.
    pub fn new(key: &[u8; 32], rejected: Counter) -> Self {
        SealedTransport {
            cipher: Arc::new(XChaCha20Poly1305::new(key.into())),
            rejected,
            prebound: Mutex::new(None),
        }
    }

    /// Like [`SealedTransport::new`], but `open` on the socket's own local
    /// address uses `socket` instead of binding a new one. This is how the
    /// caller binds first (clear error, known port) and then hands the socket
    /// to chitchat.
    pub fn with_bound_socket(
        key: &[u8; 32],
        rejected: Counter,
        socket: tokio::net::UdpSocket,
    ) -> Self {
        let transport = SealedTransport::new(key, rejected);
        *lock_ignoring_poison(&transport.prebound) = Some(socket);
        transport
    }

    fn take_prebound(&self, listen_addr: SocketAddr) -> Option<tokio::net::UdpSocket> {
        let mut slot = lock_ignoring_poison(&self.prebound);
        let matches = slot
            .as_ref()
            .and_then(|s| s.local_addr().ok())
            .is_some_and(|addr| addr == listen_addr);
        if matches {
            slot.take()
        } else {
            None
        }
    }
}

fn lock_ignoring_poison<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The guarded value is an Option we only take/put; a panic elsewhere
    // cannot leave it half-updated.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[async_trait]
impl Transport for SealedTransport {
    async fn open(&self, listen_addr: SocketAddr) -> anyhow::Result<Box<dyn Socket>> {
        let socket = match self.take_prebound(listen_addr) {
            Some(socket) => socket,
            None => tokio::net::UdpSocket::bind(listen_addr)
                .await
                .with_context(|| format!("cannot bind gossip UDP socket to {listen_addr}"))?,
        };
        Ok(Box::new(SealedSocket {
            socket,
            cipher: self.cipher.clone(),
            rejected: self.rejected.clone(),
            plain: Vec::with_capacity(RECV_BUFFER_LEN),
            recv_buf: vec![0u8; RECV_BUFFER_LEN].into_boxed_slice(),
            reject_log: RateLimitedLog::default(),
            oversize_log: RateLimitedLog::default(),
            replay: NonceWindow::new(REPLAY_WINDOW_MS, REPLAY_CAPACITY),
        }))
    }
}

/// One open sealed socket (what chitchat's server owns).
struct SealedSocket {
    socket: tokio::net::UdpSocket,
    cipher: Arc<XChaCha20Poly1305>,
    rejected: Counter,
    /// Reused send buffer: nonce || message || tag.
    plain: Vec<u8>,
    recv_buf: Box<[u8]>,
    reject_log: RateLimitedLog,
    oversize_log: RateLimitedLog,
    replay: NonceWindow,
}

/// Why a received datagram was dropped (for logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reject {
    /// Shorter than nonce + tag: cannot be ours.
    TooShort,
    /// Tag check failed: wrong key, tampered, or not ours at all.
    Unauthenticated,
    /// Authentic but not a chitchat message we understand (a peer running an
    /// incompatible version with the same secret).
    Undecodable,
    /// Authentic but outside the time window: replayed late, or a clock off.
    Stale,
    /// Authentic but its nonce was already accepted: replayed.
    Replayed,
}

impl Reject {
    fn as_str(self) -> &'static str {
        match self {
            Reject::TooShort => "too short to be sealed",
            Reject::Unauthenticated => "failed authentication (wrong key or tampered)",
            Reject::Undecodable => "authentic but not a valid chitchat message",
            Reject::Stale => {
                "authentic but too old or too new (replayed, or clocks more than 30 s apart)"
            }
            Reject::Replayed => "replayed (nonce already seen)",
        }
    }
}

/// Warn at most once per [`WARN_EVERY`], counting what was suppressed.
#[derive(Default)]
struct RateLimitedLog {
    last_warn: Option<Instant>,
    suppressed: u64,
}

impl RateLimitedLog {
    /// Returns `Some(suppressed_since_last_warning)` when a warning is due.
    fn should_warn(&mut self) -> Option<u64> {
        let now = Instant::now();
        match self.last_warn {
            Some(last) if now.duration_since(last) < WARN_EVERY => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last_warn = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// Seals `buf[NONCE_LEN..]` in place: fills the nonce and the timestamp
/// `now_ms`, encrypts, appends the tag. `buf` must start with
/// `NONCE_LEN + TIMESTAMP_LEN` bytes of room for them.
fn seal_in_place(cipher: &XChaCha20Poly1305, buf: &mut Vec<u8>, now_ms: u64) -> anyhow::Result<()> {
    let mut nonce = XNonce::default();
    rand::thread_rng().fill_bytes(&mut nonce);
    buf[..NONCE_LEN].copy_from_slice(&nonce);
    buf[NONCE_LEN..NONCE_LEN + TIMESTAMP_LEN].copy_from_slice(&now_ms.to_be_bytes());
    let tag = cipher
        .encrypt_in_place_detached(&nonce, AAD, &mut buf[NONCE_LEN..])
        .map_err(|_| anyhow::anyhow!("gossip message too long to seal"))?;
    buf.extend_from_slice(&tag);
    Ok(())
}

/// Opens a sealed datagram in place and checks it against the replay
/// window at `now_ms`; returns the chitchat message's bytes.
fn open_in_place<'a>(
    cipher: &XChaCha20Poly1305,
    replay: &NonceWindow,
    datagram: &'a mut [u8],
    now_ms: u64,
) -> Result<&'a [u8], Reject> {
    if datagram.len() < SEAL_OVERHEAD {
        return Err(Reject::TooShort);
    }
    let (nonce, rest) = datagram.split_at_mut(NONCE_LEN);
    let (body, tag) = rest.split_at_mut(rest.len() - TAG_LEN);
    let nonce_bytes: &[u8] = nonce;
    let tag = Tag::from_slice(tag);
    cipher
        .decrypt_in_place_detached(XNonce::from_slice(nonce_bytes), AAD, body, tag)
        .map_err(|_| Reject::Unauthenticated)?;
    let (ts, message) = body.split_at(TIMESTAMP_LEN);
    let mut ts_bytes = [0u8; TIMESTAMP_LEN];
    ts_bytes.copy_from_slice(ts);
    replay
        .check(nonce_bytes, u64::from_be_bytes(ts_bytes), now_ms)
        .map_err(|r| match r {
            Replay::Stale => Reject::Stale,
            Replay::Seen => Reject::Replayed,
        })?;
    Ok(message)
}

/// Seals one message into a fresh datagram (test helper and documentation
/// of the format; the socket uses the in-place path with a reused buffer).
#[cfg(test)]
fn seal_message(cipher: &XChaCha20Poly1305, msg: &ChitchatMessage, now_ms: u64) -> Vec<u8> {
    let mut buf = vec![0u8; NONCE_LEN + TIMESTAMP_LEN];
    msg.serialize(&mut buf);
    seal_in_place(cipher, &mut buf, now_ms).expect("test messages are small");
    buf
}

fn is_transient_io_error(err: &io::Error) -> bool {
    // Same set chitchat's own UDP transport treats as transient: ICMP
    // feedback from a dead peer must not kill the gossip loop.
    matches!(
        err.kind(),
        io::ErrorKind::OutOfMemory
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

impl SealedSocket {
    fn reject(&mut self, from: SocketAddr, len: usize, why: Reject) {
        self.rejected.inc();
        debug!(%from, len, reason = why.as_str(), "dropped gossip datagram");
        if let Some(suppressed) = self.reject_log.should_warn() {
            warn!(
                %from,
                len,
                reason = why.as_str(),
                suppressed_since_last_warning = suppressed,
                "dropped gossip datagram (is every node using the same CLUSTER_SECRET?)"
            );
        }
    }
}

#[async_trait]
impl Socket for SealedSocket {
    async fn send(&mut self, to: SocketAddr, msg: ChitchatMessage) -> anyhow::Result<()> {
        self.plain.clear();
        self.plain.resize(NONCE_LEN + TIMESTAMP_LEN, 0);
        msg.serialize(&mut self.plain);
        let plain_len = self.plain.len() - NONCE_LEN - TIMESTAMP_LEN;
        if plain_len > MAX_PLAINTEXT {
            // See `MAX_SEALED_DATAGRAM`: refuse rather than hand the kernel a
            // datagram it cannot send. Not an error for chitchat: the
            // transport is not broken, this one message is just too big.
            if let Some(suppressed) = self.oversize_log.should_warn() {
                warn!(
                    %to,
                    plain_len,
                    max = MAX_PLAINTEXT,
                    suppressed_since_last_warning = suppressed,
                    "gossip message too large to seal into one UDP datagram; not sent"
                );
            }
            return Ok(());
        }
        seal_in_place(&self.cipher, &mut self.plain, unix_millis())?;
        self.socket
            .send_to(&self.plain, to)
            .await
            .with_context(|| format!("failed to send gossip datagram to {to}"))?;
        Ok(())
    }

    /// Cancel-safe (chitchat races it against its gossip timer): the only
    /// await is `recv_from`, which is cancel-safe; the rest is synchronous.
    async fn recv(&mut self) -> anyhow::Result<(SocketAddr, ChitchatMessage)> {
        loop {
            let (len, from) = match self.socket.recv_from(&mut self.recv_buf).await {
                Ok(received) => received,
                Err(err) if is_transient_io_error(&err) => {
                    debug!(error = %err, "transient gossip recv error");
                    continue;
                }
                Err(err) => return Err(err).context("fatal gossip UDP recv error"),
            };
            let opened = open_in_place(
                &self.cipher,
                &self.replay,
                &mut self.recv_buf[..len],
                unix_millis(),
            );
            let decoded = match opened {
                Ok(mut plain) => ChitchatMessage::deserialize(&mut plain).map_err(|err| {
                    debug!(%from, error = %err, "undecodable authentic gossip message");
                    Reject::Undecodable
                }),
                Err(why) => Err(why),
            };
            match decoded {
                Ok(msg) => return Ok((from, msg)),
                Err(why) => self.reject(from, len, why),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::keys::ClusterKeys;
    use tokio::net::UdpSocket;
    use tokio::time::timeout;

    /// A real SYN carrying `cluster_id` and an empty digest. `Digest` cannot
    /// be named outside chitchat, so the message is built by decoding bytes:
    /// chitchat's own header (taken from an encoded `BadCluster`), then the
    /// SYN tag, an empty digest and the cluster id.
    fn msg(cluster_id: &str) -> ChitchatMessage {
        let mut bytes = ChitchatMessage::BadCluster.serialize_to_vec();
        bytes.pop(); // message type tag
        bytes.push(0); // SYN
        0u16.serialize(&mut bytes); // digest: no nodes
        cluster_id.serialize(&mut bytes);
        let msg = ChitchatMessage::deserialize(&mut &bytes[..]).unwrap();
        assert!(matches!(&msg, ChitchatMessage::Syn { cluster_id: c, .. } if c == cluster_id));
        msg
    }

    async fn open_pair(
        key_a: &[u8; 32],
        key_b: &[u8; 32],
    ) -> (
        Box<dyn Socket>,
        SocketAddr,
        Box<dyn Socket>,
        SocketAddr,
        Counter,
    ) {
        let counter = Counter::default();
        let sa = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let sb = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (aa, ab) = (sa.local_addr().unwrap(), sb.local_addr().unwrap());
        let a = SealedTransport::with_bound_socket(key_a, Counter::default(), sa)
            .open(aa)
            .await
            .unwrap();
        let b = SealedTransport::with_bound_socket(key_b, counter.clone(), sb)
            .open(ab)
            .await
            .unwrap();
        (a, aa, b, ab, counter)
    }

    const NOW: u64 = 1_700_000_000_000;

    fn window() -> NonceWindow {
        NonceWindow::new(REPLAY_WINDOW_MS, 1000)
    }

    #[test]
    fn seal_open_round_trip_and_tamper() {
        let key = ClusterKeys::derive("s3cret").gossip;
        let cipher = XChaCha20Poly1305::new((&key).into());
        let sealed = seal_message(&cipher, &msg("x"), NOW);
        let plain_len = msg("x").serialized_len();
        assert_eq!(sealed.len(), plain_len + SEAL_OVERHEAD);

        let mut copy = sealed.clone();
        let mut plain = open_in_place(&cipher, &window(), &mut copy, NOW).unwrap();
        assert_eq!(ChitchatMessage::deserialize(&mut plain).unwrap(), msg("x"));

        // Two seals of the same message differ (fresh nonce each time).
        assert_ne!(seal_message(&cipher, &msg("x"), NOW), sealed);

        // Any flipped bit, in nonce, body or tag, fails.
        for i in [0, NONCE_LEN, sealed.len() - 1] {
            let mut t = sealed.clone();
            t[i] ^= 1;
            assert_eq!(
                open_in_place(&cipher, &window(), &mut t, NOW).unwrap_err(),
                Reject::Unauthenticated
            );
        }
        // Wrong key.
        let other = XChaCha20Poly1305::new((&ClusterKeys::derive("other").gossip).into());
        let mut t = sealed.clone();
        assert_eq!(
            open_in_place(&other, &window(), &mut t, NOW).unwrap_err(),
            Reject::Unauthenticated
        );
        // Too short.
        let mut short = vec![0u8; SEAL_OVERHEAD - 1];
        assert_eq!(
            open_in_place(&cipher, &window(), &mut short, NOW).unwrap_err(),
            Reject::TooShort
        );
    }

    #[test]
    fn a_datagram_opens_once_and_not_when_old() {
        let key = ClusterKeys::derive("s3cret").gossip;
        let cipher = XChaCha20Poly1305::new((&key).into());
        let w = window();
        let sealed = seal_message(&cipher, &msg("x"), NOW);
        assert!(open_in_place(&cipher, &w, &mut sealed.clone(), NOW + 5).is_ok());
        assert_eq!(
            open_in_place(&cipher, &w, &mut sealed.clone(), NOW + 10).unwrap_err(),
            Reject::Replayed
        );
        let old = seal_message(&cipher, &msg("x"), NOW - REPLAY_WINDOW_MS - 1);
        assert_eq!(
            open_in_place(&cipher, &w, &mut old.clone(), NOW).unwrap_err(),
            Reject::Stale
        );
    }

    #[tokio::test]
    async fn a_replayed_datagram_is_dropped_and_counted() {
        let key = ClusterKeys::derive("s3cret").gossip;
        let (_a, _, mut b, ab, counter) = open_pair(&key, &key).await;
        let cipher = XChaCha20Poly1305::new((&key).into());
        let raw = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let captured = seal_message(&cipher, &msg("first"), unix_millis());
        raw.send_to(&captured, ab).await.unwrap();
        let (_, got) = timeout(Duration::from_secs(5), b.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, msg("first"));
        raw.send_to(&captured, ab).await.unwrap();
        raw.send_to(&seal_message(&cipher, &msg("next"), unix_millis()), ab)
            .await
            .unwrap();
        let (_, got) = timeout(Duration::from_secs(5), b.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, msg("next"), "the replay must not be delivered");
        assert_eq!(counter.get(), 1);
    }

    #[test]
    fn size_budget_is_consistent() {
        assert_eq!(MAX_PLAINTEXT + SEAL_OVERHEAD, MAX_SEALED_DATAGRAM);
        const { assert!(RECV_BUFFER_LEN >= 65_527) };
    }

    #[tokio::test]
    async fn socket_round_trip() {
        let key = ClusterKeys::derive("s3cret").gossip;
        let (mut a, aa, mut b, ab, counter) = open_pair(&key, &key).await;
        a.send(ab, msg("x")).await.unwrap();
        let (from, got) = timeout(Duration::from_secs(5), b.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(from, aa);
        assert_eq!(got, msg("x"));
        assert_eq!(counter.get(), 0);
    }

    #[tokio::test]
    async fn bad_datagrams_are_dropped_counted_and_recv_continues() {
        let key = ClusterKeys::derive("s3cret").gossip;
        let wrong = ClusterKeys::derive("not the secret").gossip;
        let (mut a, aa, mut b, ab, counter) = open_pair(&key, &key).await;
        let (mut outsider, _, _, _, _) = open_pair(&wrong, &wrong).await;
        let raw = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let cipher = XChaCha20Poly1305::new((&key).into());

        // 1. junk, 2. too short, 3. tampered valid seal, 4. plain chitchat
        // bytes (what an unsealed node would send), 5. wrong key.
        raw.send_to(&[0xAB; 100], ab).await.unwrap();
        raw.send_to(&[1, 2, 3], ab).await.unwrap();
        let mut tampered = seal_message(&cipher, &msg("x"), unix_millis());
        let mid = tampered.len() / 2;
        tampered[mid] ^= 0x80;
        raw.send_to(&tampered, ab).await.unwrap();
        raw.send_to(&msg("x").serialize_to_vec(), ab).await.unwrap();
        outsider.send(ab, msg("x")).await.unwrap();
        // 6. a valid one.
        a.send(ab, msg("x")).await.unwrap();

        let (from, got) = timeout(Duration::from_secs(5), b.recv())
            .await
            .expect("valid datagram after bad ones must arrive")
            .unwrap();
        assert_eq!(from, aa);
        assert_eq!(got, msg("x"));
        assert_eq!(counter.get(), 5);
    }

    #[tokio::test]
    async fn largest_message_fits_and_larger_is_refused() {
        let key = ClusterKeys::derive("s3cret").gossip;
        let (mut a, _, mut b, ab, _) = open_pair(&key, &key).await;
        // Plain SYN length = 8 bytes of framing + the cluster id.
        let overhead = msg("").serialized_len();
        let fits = msg(&"x".repeat(MAX_PLAINTEXT - overhead));
        assert_eq!(fits.serialized_len(), MAX_PLAINTEXT);
        let too_big = msg(&"y".repeat(MAX_PLAINTEXT - overhead + 1));

        // Refused quietly (not an error: the transport is fine).
        a.send(ab, too_big).await.unwrap();
        // The largest one is sent as a 65 507-byte datagram and arrives.
        a.send(ab, fits).await.unwrap();
        let (_, got) = timeout(Duration::from_secs(5), b.recv())
            .await
            .unwrap()
            .unwrap();
        match got {
            ChitchatMessage::Syn { cluster_id, .. } => {
                assert_eq!(cluster_id.len(), MAX_PLAINTEXT - overhead);
                assert!(
                    cluster_id.starts_with('x'),
                    "the oversized one was not sent"
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn prebound_socket_is_used_only_for_its_own_address() {
        let key = [7u8; 32];
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = s.local_addr().unwrap();
        let t = SealedTransport::with_bound_socket(&key, Counter::default(), s);
        // Another address: binds its own socket, keeps the prebound one.
        let _other = t.open("127.0.0.1:0".parse().unwrap()).await.unwrap();
        // Its own address: must reuse it (binding again would fail).
        let _mine = t.open(addr).await.unwrap();
        // Now it is taken, so a second open on that address is a real bind
        // on a busy port and fails, naming the address.
        let err = t.open(addr).await.err().expect("port is busy");
        assert!(format!("{err:#}").contains(&addr.to_string()), "{err:#}");
    }
}
