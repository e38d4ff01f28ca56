//! Which network addresses the worker may connect to, and a DNS resolver
//! that enforces it.
//!
//! The worker fetches URLs chosen by strangers. Without a guard, a URL such
//! as `http://169.254.169.254/` or `http://localhost:9090/` would let anyone
//! reach cloud metadata services, admin ports and the cluster's own internal
//! API (server-side request forgery). The rule here is simple: only publicly
//! routable unicast addresses may be dialled, unless an operator explicitly
//! exempts a network (`ALLOWED_SOURCE_NETWORKS`), e.g. for an origin on a
//! private LAN or for tests.
//!
//! The check has to happen on the addresses that are actually connected to,
//! not on the host name in the URL, otherwise a DNS name pointing at a
//! private address (or re-pointed after a first check: DNS rebinding) slips
//! through. That is why [`GuardedResolver`] plugs into reqwest's connector:
//! whatever it returns is exactly what gets dialled. Literal IP hosts never
//! reach a resolver, so the fetcher checks those itself with
//! [`AddressPolicy::check`].

use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use hickory_resolver::config::{ResolveHosts, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::{ResolveError, Resolver, ResolverBuilder, TokioResolver};
use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// DNS answers cached by [`GuardedResolver`]. hickory's default (32) is
/// sized for a desktop; a worker talks to many origins.
const DNS_CACHE_SIZE: usize = 1024;

/// Why an address is not publicly routable, so logs and error messages can
/// say *which* rule refused it rather than just "forbidden".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Restriction {
    /// `0.0.0.0` or `::`: connecting to it reaches the local host.
    Unspecified,
    /// `0.0.0.0/8` ("this network"); Linux treats parts of it as local.
    ThisNetwork,
    /// `127.0.0.0/8` or `::1`: the worker itself.
    Loopback,
    /// RFC 1918 private ranges: `10/8`, `172.16/12`, `192.168/16`.
    Private,
    /// `100.64.0.0/10`, carrier-grade NAT shared space (RFC 6598).
    SharedAddressSpace,
    /// `169.254.0.0/16` or `fe80::/10`; home of cloud metadata services.
    LinkLocal,
    /// `192.0.0.0/24` (IPv4) or `2001::/23` (IPv6, includes Teredo):
    /// IETF protocol assignments, not general-purpose hosts.
    ProtocolAssignment,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`,
    /// `3fff::/20`: documentation ranges, never legitimately routed.
    Documentation,
    /// `198.18.0.0/15`: network benchmarking (RFC 2544).
    Benchmarking,
    /// `192.88.99.0/24`: deprecated 6to4 relay anycast (RFC 7526).
    Relay6to4,
    /// `224.0.0.0/4` or `ff00::/8`: multicast, never an HTTP origin.
    Multicast,
    /// `255.255.255.255`: limited broadcast.
    Broadcast,
    /// `240.0.0.0/4`: reserved for future use.
    Reserved,
    /// `fc00::/7`: IPv6 unique local addresses (the IPv6 "private" ranges).
    UniqueLocal,
    /// `fec0::/10`: deprecated IPv6 site-local addresses.
    SiteLocal,
    /// `100::/64`: IPv6 discard-only prefix (RFC 6666).
    DiscardOnly,
    /// `64:ff9b:1::/48`: local-use NAT64 prefix (RFC 8215), translates into
    /// the operator's own network.
    LocalNat64,
    /// IPv6 outside `2000::/3`: not allocated as global unicast.
    NotGlobalUnicast,
}

impl Restriction {
    /// A short human reason, used in error messages and logs.
    pub fn reason(self) -> &'static str {
        match self {
            Restriction::Unspecified => "unspecified address",
            Restriction::ThisNetwork => "\"this network\" (0.0.0.0/8)",
            Restriction::Loopback => "loopback",
            Restriction::Private => "private network",
            Restriction::SharedAddressSpace => "carrier-grade NAT shared space",
            Restriction::LinkLocal => "link-local",
            Restriction::ProtocolAssignment => "IETF protocol assignment",
            Restriction::Documentation => "documentation range",
            Restriction::Benchmarking => "benchmarking range",
            Restriction::Relay6to4 => "6to4 relay anycast",
            Restriction::Multicast => "multicast",
            Restriction::Broadcast => "broadcast",
            Restriction::Reserved => "reserved range",
            Restriction::UniqueLocal => "unique local (private IPv6)",
            Restriction::SiteLocal => "site-local",
            Restriction::DiscardOnly => "discard-only prefix",
            Restriction::LocalNat64 => "local-use NAT64 prefix",
            Restriction::NotGlobalUnicast => "not IPv6 global unicast",
        }
    }
}

impl fmt::Display for Restriction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// Classifies `ip`: `None` if it is publicly routable, otherwise the rule
/// that refuses it. This is the policy without exemptions; callers that
/// honour `ALLOWED_SOURCE_NETWORKS` go through [`AddressPolicy`].
///
/// IPv6 forms that carry an IPv4 address and are delivered to it (IPv4-mapped
/// `::ffff:a.b.c.d`, IPv4-translated `::ffff:0:a.b.c.d`, the deprecated
/// IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::/96` and 6to4 `2002::/16`)
/// are judged by the embedded IPv4 address, because that is where the
/// packets end up.
pub fn classify(ip: IpAddr) -> Option<Restriction> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// True if `ip` is publicly routable (see [`classify`]). Convenience for
/// callers that only need a yes/no answer.
pub fn is_public(ip: IpAddr) -> bool {
    classify(ip).is_none()
}

fn classify_v4(ip: Ipv4Addr) -> Option<Restriction> {
    use Restriction::*;
    let r = match ip.octets() {
        [0, 0, 0, 0] => Unspecified,
        [0, ..] => ThisNetwork,
        [10, ..] => Private,
        [100, b, ..] if b & 0xc0 == 64 => SharedAddressSpace,
        [127, ..] => Loopback,
        [169, 254, ..] => LinkLocal,
        [172, b, ..] if b & 0xf0 == 16 => Private,
        [192, 0, 0, _] => ProtocolAssignment,
        [192, 0, 2, _] => Documentation,
        [192, 88, 99, _] => Relay6to4,
        [192, 168, ..] => Private,
        [198, b, ..] if b & 0xfe == 18 => Benchmarking,
        [198, 51, 100, _] => Documentation,
        [203, 0, 113, _] => Documentation,
        [255, 255, 255, 255] => Broadcast,
        [a, ..] if a & 0xf0 == 224 => Multicast,
        [a, ..] if a & 0xf0 == 240 => Reserved,
        _ => return None,
    };
    Some(r)
}

fn embedded_v4(hi: u16, lo: u16) -> Ipv4Addr {
    let [a, b] = hi.to_be_bytes();
    let [c, d] = lo.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

fn classify_v6(ip: Ipv6Addr) -> Option<Restriction> {
    use Restriction::*;
    if ip.is_unspecified() {
        return Some(Unspecified);
    }
    if ip.is_loopback() {
        return Some(Loopback);
    }
    let s = ip.segments();
    let r = match s {
        // IPv4-mapped ::ffff:a.b.c.d
        [0, 0, 0, 0, 0, 0xffff, hi, lo]
        // IPv4-translated ::ffff:0:a.b.c.d (RFC 2765)
        | [0, 0, 0, 0, 0xffff, 0, hi, lo]
        // IPv4-compatible ::a.b.c.d (deprecated, RFC 4291)
        | [0, 0, 0, 0, 0, 0, hi, lo]
        // NAT64 well-known prefix 64:ff9b::/96 (RFC 6052)
        | [0x64, 0xff9b, 0, 0, 0, 0, hi, lo]
        // 6to4 2002:AABB:CCDD::/48 (RFC 3056)
        | [0x2002, hi, lo, ..] => return classify_v4(embedded_v4(hi, lo)),
        [0x64, 0xff9b, 1, ..] => LocalNat64,
        [0x100, 0, 0, 0, ..] => DiscardOnly,
        [0x2001, 0xdb8, ..] => Documentation,
        [0x2001, b, ..] if b < 0x200 => ProtocolAssignment,
        [0x3fff, b, ..] if b & 0xf000 == 0 => Documentation,
        [a, ..] if a & 0xffc0 == 0xfe80 => LinkLocal,
        [a, ..] if a & 0xffc0 == 0xfec0 => SiteLocal,
        [a, ..] if a & 0xfe00 == 0xfc00 => UniqueLocal,
        [a, ..] if a & 0xff00 == 0xff00 => Multicast,
        [a, ..] if a & 0xe000 != 0x2000 => NotGlobalUnicast,
        _ => return None,
    };
    Some(r)
}

/// An address the policy refuses to connect to. Carries the address and the
/// rule so the refusal can be logged and reported precisely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("address {ip} is not allowed ({restriction})")]
pub struct Blocked {
    /// The refused address, as it would have been dialled.
    pub ip: IpAddr,
    /// Which rule refused it.
    pub restriction: Restriction,
}

/// The worker's outbound address policy: public addresses plus operator
/// exemptions. Kept as a value (not a global) so tests and multiple clients
/// can use different exemptions side by side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    allowed: Vec<IpNet>,
}

impl AddressPolicy {
    /// Builds a policy exempting `allowed` (from `ALLOWED_SOURCE_NETWORKS`,
    /// e.g. `127.0.0.2/32`) from the public-only rule. Host bits are
    /// cleared so `10.1.2.3/8` means `10.0.0.0/8`, as an operator would
    /// expect.
    pub fn new(allowed: Vec<IpNet>) -> Self {
        let allowed = allowed.into_iter().map(|n| n.trunc()).collect();
        AddressPolicy { allowed }
    }

    /// The exempt networks, for start-up logging.
    pub fn allowed(&self) -> &[IpNet] {
        &self.allowed
    }

    /// Decides whether the worker may connect to `ip`. An IPv4-mapped IPv6
    /// address also matches an exemption written as IPv4, because a
    /// dual-stack socket delivers it to that IPv4 address.
    pub fn check(&self, ip: IpAddr) -> Result<(), Blocked> {
        let canonical = ip.to_canonical();
        if self
            .allowed
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&canonical))
        {
            return Ok(());
        }
        match classify(ip) {
            None => Ok(()),
            Some(restriction) => Err(Blocked { ip, restriction }),
        }
    }
}

/// Every address a host name resolved to was refused by the policy. This
/// is the error [`GuardedResolver`] hands to reqwest, and what the fetcher
/// looks for (with [`find_host_blocked`]) to answer 403 instead of 502.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostBlocked {
    /// The host name as looked up.
    pub host: String,
    /// Every address the name resolved to, each with its refusal reason.
    pub refused: Vec<Blocked>,
}

impl fmt::Display for HostBlocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "host {} resolves only to refused addresses", self.host)?;
        if let Some(first) = self.refused.first() {
            write!(f, " ({} is {}", first.ip, first.restriction)?;
            if self.refused.len() > 1 {
                write!(f, ", and {} more", self.refused.len() - 1)?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl StdError for HostBlocked {}

/// Why [`GuardedResolver::lookup`] produced no usable address: the policy
/// refused all of them, or DNS itself failed.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// Resolved, but only to refused addresses (maps to 403).
    #[error(transparent)]
    Blocked(HostBlocked),
    /// DNS failure: no such name, no records, server unreachable (maps to 502).
    #[error("DNS lookup for {host} failed: {source}")]
    Resolve {
        /// The host name as looked up.
        host: String,
        /// What hickory reported.
        #[source]
        source: ResolveError,
    },
}

/// Walks an error's `source()` chain looking for a [`HostBlocked`], so code
/// that only sees a reqwest error can tell "refused by policy" apart from
/// ordinary connection failures.
pub fn find_host_blocked<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a HostBlocked> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(hb) = e.downcast_ref::<HostBlocked>() {
            return Some(hb);
        }
        if let Some(LookupError::Blocked(hb)) = e.downcast_ref::<LookupError>() {
            return Some(hb);
        }
        cur = e.source();
    }
    None
}

/// A DNS resolver for reqwest that only ever returns addresses the
/// [`AddressPolicy`] allows, so a host name cannot smuggle a connection to a
/// private or local address, whatever its DNS says and whenever it says it.
///
/// Uses the system resolver configuration (`/etc/resolv.conf`) and always
/// consults `/etc/hosts`, so names like `localhost` resolve the way the
/// operating system would resolve them and are then judged by the policy.
/// Cheap to clone.
#[derive(Clone)]
pub struct GuardedResolver {
    resolver: Arc<TokioResolver>,
    policy: Arc<AddressPolicy>,
}

impl fmt::Debug for GuardedResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardedResolver")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl GuardedResolver {
    /// Builds a resolver from the system configuration. If that is missing
    /// or unusable (no `/etc/resolv.conf`, no name servers in it), falls back
    /// to hickory's default public resolvers and logs a warning: a worker
    /// that cannot start is worse than one using a stock DNS configuration.
    /// Never needs a running Tokio runtime to construct.
    pub fn new(policy: AddressPolicy) -> Self {
        let mut builder = builder_or_default(TokioResolver::builder_tokio());
        let opts = builder.options_mut();
        opts.use_hosts_file = ResolveHosts::Always;
        opts.cache_size = DNS_CACHE_SIZE;
        Self::with_resolver(builder.build(), policy)
    }

    /// Wraps an already-configured hickory resolver, for callers that need
    /// a non-system DNS setup.
    pub fn with_resolver(resolver: TokioResolver, policy: AddressPolicy) -> Self {
        GuardedResolver {
            resolver: Arc::new(resolver),
            policy: Arc::new(policy),
        }
    }

    /// The policy this resolver enforces.
    pub fn policy(&self) -> &AddressPolicy {
        &self.policy
    }

    /// Resolves `host` and keeps only the allowed addresses. Fails with
    /// [`LookupError::Blocked`] if it resolved but every address was
    /// refused, so the caller can report "forbidden" rather than "DNS
    /// failure".
    pub async fn lookup(&self, host: &str) -> Result<Vec<IpAddr>, LookupError> {
        let answer =
            self.resolver
                .lookup_ip(host)
                .await
                .map_err(|source| LookupError::Resolve {
                    host: host.to_owned(),
                    source,
                })?;
        let mut allowed = Vec::new();
        let mut refused = Vec::new();
        for ip in answer.iter() {
            match self.policy.check(ip) {
                Ok(()) => allowed.push(ip),
                Err(blocked) => refused.push(blocked),
            }
        }
        if !refused.is_empty() {
            tracing::debug!(
                host,
                refused = ?refused,
                allowed = allowed.len(),
                "DNS answer contained refused addresses"
            );
        }
        if allowed.is_empty() && !refused.is_empty() {
            return Err(LookupError::Blocked(HostBlocked {
                host: host.to_owned(),
                refused,
            }));
        }
        // An empty answer with nothing refused falls through: the connector
        // reports "no addresses", an ordinary upstream failure.
        Ok(allowed)
    }
}

/// The system resolver builder, or hickory's defaults if the system
/// configuration could not be read.
fn builder_or_default(
    system: Result<ResolverBuilder<TokioConnectionProvider>, ResolveError>,
) -> ResolverBuilder<TokioConnectionProvider> {
    match system {
        Ok(builder) => builder,
        Err(error) => {
            tracing::warn!(
                %error,
                "system DNS configuration unusable; falling back to default resolvers"
            );
            Resolver::builder_with_config(
                ResolverConfig::default(),
                TokioConnectionProvider::default(),
            )
        }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let this = self.clone();
        Box::pin(async move {
            match this.lookup(name.as_str()).await {
                Ok(ips) => {
                    // Port 0 is replaced by reqwest with the URL's port.
                    let addrs: Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
                    Ok(addrs)
                }
                // Hand over the bare `HostBlocked` so it is directly in the
                // reqwest error's source chain.
                Err(LookupError::Blocked(hb)) => Err(Box::new(hb) as _),
                Err(other) => Err(Box::new(other) as _),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        match s.parse() {
            Ok(ip) => ip,
            Err(e) => panic!("bad test address {s}: {e}"),
        }
    }

    fn net(s: &str) -> IpNet {
        match s.parse() {
            Ok(n) => n,
            Err(e) => panic!("bad test network {s}: {e}"),
        }
    }

    #[test]
    fn refused_ipv4_ranges() {
        use Restriction::*;
        let cases: &[(&str, Restriction)] = &[
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", ThisNetwork),
            ("0.255.255.255", ThisNetwork),
            ("10.0.0.1", Private),
            ("10.255.255.255", Private),
            ("100.64.0.0", SharedAddressSpace),
            ("100.127.255.255", SharedAddressSpace),
            ("127.0.0.1", Loopback),
            ("127.0.0.2", Loopback),
            ("127.255.255.254", Loopback),
            ("169.254.169.254", LinkLocal),
            ("169.254.0.1", LinkLocal),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.0.0.1", ProtocolAssignment),
            ("192.0.0.255", ProtocolAssignment),
            ("192.0.2.1", Documentation),
            ("192.88.99.1", Relay6to4),
            ("192.168.0.1", Private),
            ("192.168.255.255", Private),
            ("198.18.0.1", Benchmarking),
            ("198.19.255.255", Benchmarking),
            ("198.51.100.7", Documentation),
            ("203.0.113.9", Documentation),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("240.0.0.1", Reserved),
            ("254.1.2.3", Reserved),
            ("255.255.255.254", Reserved),
            ("255.255.255.255", Broadcast),
        ];
        for (addr, want) in cases {
            assert_eq!(classify(ip(addr)), Some(*want), "{addr}");
            assert!(!is_public(ip(addr)), "{addr}");
        }
    }

    #[test]
    fn public_ipv4_edges() {
        for addr in [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.0",
            "192.0.3.0",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "198.51.99.255",
            "198.51.101.0",
            "203.0.112.255",
            "203.0.114.0",
            "223.255.255.255",
        ] {
            assert_eq!(classify(ip(addr)), None, "{addr}");
            assert!(is_public(ip(addr)), "{addr}");
        }
    }

    #[test]
    fn refused_ipv6_ranges() {
        use Restriction::*;
        let cases: &[(&str, Restriction)] = &[
            ("::", Unspecified),
            ("::1", Loopback),
            ("fe80::1", LinkLocal),
            ("febf:ffff::1", LinkLocal),
            ("fec0::1", SiteLocal),
            ("fc00::1", UniqueLocal),
            ("fd12:3456:789a::1", UniqueLocal),
            ("ff02::1", Multicast),
            ("ff0e::1", Multicast),
            ("2001:db8::1", Documentation),
            ("2001:db8:ffff::1", Documentation),
            ("3fff::1", Documentation),
            ("100::1", DiscardOnly),
            ("100::ffff:ffff:ffff:ffff", DiscardOnly),
            ("2001::1", ProtocolAssignment), // Teredo
            ("2001:1ff::1", ProtocolAssignment),
            ("64:ff9b:1::1", LocalNat64),
            ("::2:3:4:5", NotGlobalUnicast),
            ("4000::1", NotGlobalUnicast),
            ("5f00::1", NotGlobalUnicast),
            ("e000::1", NotGlobalUnicast),
        ];
        for (addr, want) in cases {
            assert_eq!(classify(ip(addr)), Some(*want), "{addr}");
        }
    }

    #[test]
    fn public_ipv6() {
        for addr in [
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "2001:200::1",
            "2001:db9::1",
            "3ffe::1",
            "3fff:1000::1",
            "2a00:1450:4001::1",
        ] {
            assert_eq!(classify(ip(addr)), None, "{addr}");
        }
    }

    #[test]
    fn ipv6_embedding_ipv4_is_judged_by_the_ipv4() {
        use Restriction::*;
        let cases: &[(&str, Option<Restriction>)] = &[
            // IPv4-mapped
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:10.0.0.1", Some(Private)),
            ("::ffff:169.254.169.254", Some(LinkLocal)),
            ("::ffff:0.0.0.0", Some(Unspecified)),
            ("::ffff:8.8.8.8", None),
            // IPv4-translated
            ("::ffff:0:192.168.1.1", Some(Private)),
            ("::ffff:0:1.1.1.1", None),
            // IPv4-compatible
            ("::127.0.0.1", Some(Loopback)),
            ("::10.1.1.1", Some(Private)),
            ("::8.8.8.8", None),
            // NAT64
            ("64:ff9b::127.0.0.1", Some(Loopback)),
            ("64:ff9b::a9fe:a9fe", Some(LinkLocal)),
            ("64:ff9b::8.8.8.8", None),
            // 6to4
            ("2002:7f00:1::1", Some(Loopback)),
            ("2002:c0a8:0101::", Some(Private)),
            ("2002:a9fe:a9fe:1234::1", Some(LinkLocal)),
            ("2002:0808:0808::1", None),
        ];
        for (addr, want) in cases {
            assert_eq!(classify(ip(addr)), *want, "{addr}");
        }
    }

    #[test]
    fn policy_exempts_allowed_networks_only() {
        let policy = AddressPolicy::new(vec![net("127.0.0.2/32"), net("10.1.2.3/16")]);
        assert_eq!(policy.check(ip("127.0.0.2")), Ok(()));
        assert_eq!(policy.check(ip("::ffff:127.0.0.2")), Ok(()));
        assert_eq!(policy.check(ip("10.1.200.1")), Ok(()), "host bits cleared");
        assert_eq!(policy.check(ip("8.8.8.8")), Ok(()), "public still fine");
        assert_eq!(
            policy.check(ip("127.0.0.1")),
            Err(Blocked {
                ip: ip("127.0.0.1"),
                restriction: Restriction::Loopback
            })
        );
        assert!(policy.check(ip("10.2.0.1")).is_err());
        assert!(policy.check(ip("::1")).is_err());
        assert!(policy.check(ip("::ffff:127.0.0.1")).is_err());
        assert_eq!(policy.allowed()[1], net("10.1.0.0/16"));

        let none = AddressPolicy::default();
        assert!(none.check(ip("127.0.0.2")).is_err());

        let v6 = AddressPolicy::new(vec![net("fd00::/8")]);
        assert_eq!(v6.check(ip("fd00::5")), Ok(()));
        assert!(v6.check(ip("fe80::1")).is_err());
    }

    #[test]
    fn blocked_message_names_address_and_reason() {
        let err = AddressPolicy::default().check(ip("169.254.169.254"));
        let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(msg, "address 169.254.169.254 is not allowed (link-local)");
    }

    #[tokio::test]
    async fn localhost_resolves_via_hosts_and_is_refused() {
        let resolver = GuardedResolver::new(AddressPolicy::default());
        match resolver.lookup("localhost").await {
            Err(LookupError::Blocked(hb)) => {
                assert_eq!(hb.host, "localhost");
                assert!(!hb.refused.is_empty());
                assert!(hb
                    .refused
                    .iter()
                    .all(|b| b.restriction == Restriction::Loopback));
            }
            other => panic!("expected Blocked, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn unusable_system_config_falls_back_and_still_reads_hosts() {
        let broken = Err(ResolveError::from("no /etc/resolv.conf"));
        let mut builder = builder_or_default(broken);
        builder.options_mut().use_hosts_file = ResolveHosts::Always;
        let hickory = builder.build();
        assert!(!hickory.config().name_servers().is_empty());
        let resolver = GuardedResolver::with_resolver(hickory, AddressPolicy::default());
        assert!(matches!(
            resolver.lookup("localhost").await,
            Err(LookupError::Blocked(_))
        ));
    }

    #[tokio::test]
    async fn allowed_network_passes_through_resolver() {
        let resolver = GuardedResolver::new(AddressPolicy::new(vec![net("127.0.0.1/32")]));
        let ips = match resolver.lookup("localhost").await {
            Ok(ips) => ips,
            Err(e) => panic!("lookup failed: {e}"),
        };
        // ::1 (if hickory returns it) is filtered out; 127.0.0.1 survives.
        assert_eq!(ips, vec![ip("127.0.0.1")]);
    }

    #[tokio::test]
    async fn host_blocked_is_found_through_the_reqwest_resolve_trait() {
        let resolver = GuardedResolver::new(AddressPolicy::default());
        let name: Name = match "localhost".parse() {
            Ok(n) => n,
            Err(_) => panic!("name"),
        };
        let err = match resolver.resolve(name).await {
            Ok(_) => panic!("localhost must be refused"),
            Err(e) => e,
        };
        let found = find_host_blocked(err.as_ref());
        assert!(found.is_some(), "{err}");
    }
}
