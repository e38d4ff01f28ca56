//! The URL and address classifier: source-URL rules, `ALLOWED_SOURCES`
//! host matching and the SSRF address policy, on arbitrary strings.
//!
//! Input: a source URL as a client writes it in `url=`. Checks, beyond
//! "never panics":
//! - an accepted URL is http(s), has a host and no credentials, and
//!   re-parses (as the worker does with what the gateway forwards) to the
//!   same URL, so gateway and worker judge the same host;
//! - `ALLOWED_SOURCES` never allows a host outside its patterns;
//! - an IP-literal host is refused by the address policy exactly when
//!   `classify` restricts it, and every IPv6 spelling that carries an IPv4
//!   address (mapped, translated, compatible, NAT64, 6to4) is judged like
//!   that IPv4 address.

#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use img_proxy::edge::sources::AllowedSources;
use img_proxy::protocol::parse_source_url;
use img_proxy::worker::netguard::{classify, AddressPolicy};
use libfuzzer_sys::fuzz_target;
use url::Host;

fn allowed() -> AllowedSources {
    AllowedSources::parse(&["images.example.com".into(), "*.cdn.example.com".into()])
        .expect("patterns parse")
        .expect("patterns given")
}

/// The IPv6 forms that deliver to `v4`, which must be judged like it.
fn v6_carriers(v4: Ipv4Addr) -> [Ipv6Addr; 5] {
    let [a, b, c, d] = v4.octets();
    let (hi, lo) = (u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
    [
        v4.to_ipv6_mapped(),
        Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, hi, lo),
        Ipv6Addr::new(0, 0, 0, 0, 0, 0, hi, lo),
        Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, hi, lo),
        Ipv6Addr::new(0x2002, hi, lo, 0, 0, 0, 0, 1),
    ]
}

fn check_ip(ip: IpAddr) {
    let policy = AddressPolicy::default();
    assert_eq!(policy.check(ip).is_err(), classify(ip).is_some(), "{ip}");
    if let IpAddr::V4(v4) = ip {
        let public = classify(ip).is_none();
        for v6 in v6_carriers(v4) {
            // `::a.b.c.d` with a.b.c.d = 0.0.0.0/1 is `::`/`::1`, whose own
            // rules (unspecified, loopback) refuse it anyway.
            let carried_public = classify(IpAddr::V6(v6)).is_none();
            assert!(!carried_public || public, "{v6} carries {v4}");
            if !public {
                assert!(!carried_public, "{v6} carries restricted {v4}");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // Raw addresses, as a resolver would return them.
    match data.len() {
        4 => check_ip(IpAddr::V4(Ipv4Addr::from(
            <[u8; 4]>::try_from(data).unwrap(),
        ))),
        16 => check_ip(IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(data).unwrap(),
        ))),
        _ => {}
    }
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(url) = parse_source_url(raw) else {
        return;
    };
    assert!(matches!(url.scheme(), "http" | "https"));
    assert!(url.host_str().is_some_and(|h| !h.is_empty()));
    assert!(url.username().is_empty() && url.password().is_none());
    let again = parse_source_url(url.as_str()).expect("a serialised source URL re-parses");
    assert_eq!(
        again.host(),
        url.host(),
        "host changed on re-parse of {url}"
    );
    assert_eq!(again, url);

    if allowed().allows(&url) {
        let host = url.host_str().unwrap_or_default().trim_end_matches('.');
        assert!(
            host == "images.example.com" || host.ends_with(".cdn.example.com"),
            "{host} allowed"
        );
    }
    match url.host() {
        Some(Host::Ipv4(v4)) => check_ip(IpAddr::V4(v4)),
        Some(Host::Ipv6(v6)) => check_ip(IpAddr::V6(v6)),
        _ => {}
    }
});
