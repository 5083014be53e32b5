//! Which URLs and addresses a webhook may be delivered to (no server-side request forgery).
//!
//! The one place for these rules: the CLI checks a URL when an endpoint is added
//! ([`check_url`]), and the server's HTTP client checks every address it is about to
//! connect to ([`address_allowed`]) — the addresses a name resolves to at delivery time, so
//! a name that later resolves elsewhere (DNS rebinding) is refused at connect time too.
//!
//! Without the endpoint's `allow_insecure` only `https` to globally reachable unicast
//! addresses is allowed: loopback, private (RFC 1918, unique-local), link-local (the cloud
//! metadata address 169.254.169.254 among them), shared (CGNAT), unspecified, multicast,
//! broadcast, documentation, benchmarking and reserved ranges are refused, and so are IPv6
//! forms that embed such an IPv4 address (mapped, compatible, NAT64, 6to4).
//! `allow_insecure` is the operator's explicit choice (a receiver on the same host):
//! `http` and every address are allowed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use url::{Host, Url};

use crate::error::{CoreError, Field, Reason};

/// Longest accepted delivery URL.
pub const MAX_URL_LEN: usize = 2048;

/// IPv4 ranges that are not globally reachable unicast (IANA IPv4 Special-Purpose Address
/// Registry, plus multicast and the reserved class E block with the broadcast address).
/// 192.0.0.0/24 is refused whole: its two globally reachable anycast addresses are no
/// webhook receiver.
const V4_REFUSED: [Ipv4Net; 16] = [
    Ipv4Net::new_assert(Ipv4Addr::new(0, 0, 0, 0), 8), // "this network", unspecified
    Ipv4Net::new_assert(Ipv4Addr::new(10, 0, 0, 0), 8), // private
    Ipv4Net::new_assert(Ipv4Addr::new(100, 64, 0, 0), 10), // shared address space (CGNAT)
    Ipv4Net::new_assert(Ipv4Addr::new(127, 0, 0, 0), 8), // loopback
    Ipv4Net::new_assert(Ipv4Addr::new(169, 254, 0, 0), 16), // link-local, cloud metadata
    Ipv4Net::new_assert(Ipv4Addr::new(172, 16, 0, 0), 12), // private
    Ipv4Net::new_assert(Ipv4Addr::new(192, 0, 0, 0), 24), // IETF protocol assignments
    Ipv4Net::new_assert(Ipv4Addr::new(192, 0, 2, 0), 24), // documentation
    Ipv4Net::new_assert(Ipv4Addr::new(192, 31, 196, 0), 24), // AS112
    Ipv4Net::new_assert(Ipv4Addr::new(192, 52, 193, 0), 24), // AMT
    Ipv4Net::new_assert(Ipv4Addr::new(192, 88, 99, 0), 24), // deprecated 6to4 relay anycast
    Ipv4Net::new_assert(Ipv4Addr::new(192, 168, 0, 0), 16), // private
    Ipv4Net::new_assert(Ipv4Addr::new(198, 18, 0, 0), 15), // benchmarking
    Ipv4Net::new_assert(Ipv4Addr::new(198, 51, 100, 0), 24), // documentation
    Ipv4Net::new_assert(Ipv4Addr::new(203, 0, 113, 0), 24), // documentation
    Ipv4Net::new_assert(Ipv4Addr::new(224, 0, 0, 0), 3), // multicast, reserved, broadcast
];

/// IPv6 ranges that are never a webhook receiver (IANA IPv6 Special-Purpose Address
/// Registry, multicast, and the deprecated site-local block). Only 2000::/3 is global
/// unicast; everything outside it is refused before this list is consulted.
const V6_REFUSED: [Ipv6Net; 8] = [
    Ipv6Net::new_assert(Ipv6Addr::new(0x0064, 0xff9b, 1, 0, 0, 0, 0, 0), 48), // local NAT64
    Ipv6Net::new_assert(Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23), // IETF protocol assignments
    Ipv6Net::new_assert(Ipv6Addr::new(0x2001, 0x0db8, 0, 0, 0, 0, 0, 0), 32), // documentation
    Ipv6Net::new_assert(Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16), // 6to4: its relay may be anywhere
    Ipv6Net::new_assert(Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20), // documentation
    Ipv6Net::new_assert(Ipv6Addr::new(0x5f00, 0, 0, 0, 0, 0, 0, 0), 16), // segment routing SIDs
    Ipv6Net::new_assert(Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7),  // unique-local
    Ipv6Net::new_assert(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 9),  // link-local, site-local
];

/// Whether a delivery may connect to `ip`. With `allow_insecure` every address is allowed;
/// without it only globally reachable unicast addresses are.
pub fn address_allowed(ip: IpAddr, allow_insecure: bool) -> bool {
    allow_insecure || is_global_unicast(ip)
}

fn is_global_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_global(v4),
        IpAddr::V6(v6) => v6_global(v6),
    }
}

fn v4_global(ip: Ipv4Addr) -> bool {
    !V4_REFUSED.iter().any(|net| net.contains(&ip))
}

fn v6_global(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if s[..5] == [0; 5] {
        // ::ffff:a.b.c.d (IPv4-mapped) reaches a.b.c.d: judge that address. ::a.b.c.d
        // (IPv4-compatible, deprecated; :: and ::1 among them) is refused whole.
        return s[5] == 0xffff && v4_global(embedded_v4(s[6], s[7]));
    }
    // 64:ff9b::/96, the well-known NAT64 prefix: the last 32 bits are the IPv4 destination.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return v4_global(embedded_v4(s[6], s[7]));
    }
    let global_unicast = (s[0] & 0xe000) == 0x2000; // 2000::/3
    global_unicast && !V6_REFUSED.iter().any(|net| net.contains(&ip))
}

fn embedded_v4(hi: u16, lo: u16) -> Ipv4Addr {
    let [a, b] = hi.to_be_bytes();
    let [c, d] = lo.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

fn url_error(reason: Reason) -> CoreError {
    CoreError::invalid(Field::WebhookUrl, reason)
}

/// Checks a delivery URL as registered: `https` (or `http` with `allow_insecure`), no user
/// name or password, a host, and — when the host is an IP address, which no resolver sees
/// at delivery time — an address [`address_allowed`] accepts. `localhost` and its
/// subdomains (RFC 6761) are refused as loopback unless allowed. A domain name is checked
/// again at delivery, on every address it then resolves to.
pub fn check_url(url: &str, allow_insecure: bool) -> Result<Url, CoreError> {
    if url.trim().is_empty() {
        return Err(url_error(Reason::Required));
    }
    if url.len() > MAX_URL_LEN {
        return Err(url_error(Reason::TooLong { max: MAX_URL_LEN }));
    }
    let parsed = Url::parse(url).map_err(|_| url_error(Reason::Invalid))?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_insecure => {}
        "http" => return Err(url_error(Reason::InsecureScheme)),
        _ => return Err(url_error(Reason::Invalid)),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(url_error(Reason::Credentials));
    }
    let refused = match parsed.host() {
        None => return Err(url_error(Reason::Invalid)),
        Some(Host::Ipv4(ip)) => !address_allowed(IpAddr::V4(ip), allow_insecure),
        Some(Host::Ipv6(ip)) => !address_allowed(IpAddr::V6(ip), allow_insecure),
        Some(Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            let local = name == "localhost" || name.ends_with(".localhost");
            local && !allow_insecure
        }
    };
    if refused {
        return Err(url_error(Reason::ForbiddenAddress));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FieldError;

    fn refused(s: &str) -> bool {
        let ip: IpAddr = s.parse().unwrap();
        // Every refused address is allowed once the operator allows insecure delivery.
        assert!(address_allowed(ip, true), "{s} with allow_insecure");
        !address_allowed(ip, false)
    }

    #[test]
    fn public_addresses_are_allowed() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.215.14",
            "100.63.255.255",  // just below CGNAT
            "100.128.0.0",     // just above CGNAT
            "172.15.255.255",  // just below 172.16/12
            "172.32.0.0",      // just above
            "169.253.255.255", // just below link-local
            "192.167.255.255",
            "198.20.0.1",
            "223.255.255.255", // last unicast below multicast
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "2001:4860:4860::8888", // outside 2001::/23
            "::ffff:8.8.8.8",       // mapped public address
            "64:ff9b::808:808",     // NAT64 of 8.8.8.8
        ] {
            assert!(!refused(ip), "{ip} should be allowed");
        }
    }

    #[test]
    fn non_global_ipv4_is_refused() {
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1", // CGNAT
            "100.127.255.254",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254", // cloud metadata
            "169.254.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.9",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1", // multicast
            "239.255.255.250",
            "240.0.0.1",       // reserved
            "255.255.255.255", // broadcast
        ] {
            assert!(refused(ip), "{ip} should be refused");
        }
    }

    #[test]
    fn non_global_ipv6_is_refused() {
        for ip in [
            "::",  // unspecified
            "::1", // loopback
            "fe80::1",
            "fe80::1ff:fe23:4567:890a",
            "febf::1",
            "fec0::1", // deprecated site-local
            "fc00::1",
            "fd12:3456:789a::1", // unique-local
            "ff02::1",           // multicast
            "ff0e::1",
            "2001:db8::1", // documentation
            "3fff::1",
            "2001::1",           // Teredo
            "2002:7f00:1::1",    // 6to4 of 127.0.0.1
            "2002:0808:0808::1", // 6to4, refused whole
            "100::1",            // discard-only
            "5f00::1",
            "4000::1", // outside 2000::/3
        ] {
            assert!(refused(ip), "{ip} should be refused");
        }
    }

    #[test]
    fn ipv6_forms_of_refused_ipv4_are_refused() {
        for ip in [
            "::ffff:127.0.0.1",
            "::ffff:7f00:1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::ffff:192.168.0.1",
            "::ffff:100.64.0.1",
            "::ffff:0.0.0.0",
            "::127.0.0.1", // IPv4-compatible (deprecated)
            "::169.254.169.254",
            "::8.8.8.8",       // compatible forms are refused even for public addresses
            "64:ff9b::7f00:1", // NAT64 of 127.0.0.1
            "64:ff9b::a9fe:a9fe", // NAT64 of 169.254.169.254
            "64:ff9b:1::1",    // local-use NAT64
        ] {
            assert!(refused(ip), "{ip} should be refused");
        }
    }

    fn reason_of(url: &str, allow_insecure: bool) -> Option<Reason> {
        match check_url(url, allow_insecure) {
            Ok(_) => None,
            Err(CoreError::Validation(fields)) => {
                assert_eq!(fields.len(), 1, "{url}");
                let FieldError { field, reason } = fields[0];
                assert_eq!(field, Field::WebhookUrl, "{url}");
                Some(reason)
            }
            Err(other) => panic!("{url}: {other:?}"),
        }
    }

    #[test]
    fn https_urls_to_names_and_public_addresses_pass() {
        for url in [
            "https://hooks.example.com/mfad",
            "https://hooks.example.com:8443/a?b=c",
            "https://93.184.215.14/hook",
            "https://[2606:4700:4700::1111]/hook",
        ] {
            assert_eq!(reason_of(url, false), None, "{url}");
        }
        let parsed = check_url("https://Hooks.Example.com/x", false).unwrap();
        assert_eq!(parsed.host_str(), Some("hooks.example.com"));
    }

    #[test]
    fn http_needs_allow_insecure() {
        assert_eq!(
            reason_of("http://hooks.example.com/x", false),
            Some(Reason::InsecureScheme)
        );
        assert_eq!(reason_of("http://hooks.example.com/x", true), None);
        assert_eq!(reason_of("http://127.0.0.1:9000/x", true), None);
        assert_eq!(reason_of("http://localhost:9000/x", true), None);
    }

    #[test]
    fn malformed_and_other_schemes_are_invalid() {
        for url in [
            "hooks.example.com/x",
            "ftp://hooks.example.com/x",
            "file:///etc/passwd",
            "gopher://127.0.0.1:6379/_",
            "javascript:alert(1)",
            "https://",
            "https://exa mple.com/",
            "https://[::1/",
        ] {
            assert_eq!(reason_of(url, true), Some(Reason::Invalid), "{url}");
        }
        assert_eq!(reason_of("", false), Some(Reason::Required));
        assert_eq!(reason_of("   ", false), Some(Reason::Required));
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(
            reason_of(&long, false),
            Some(Reason::TooLong { max: MAX_URL_LEN })
        );
    }

    #[test]
    fn credentials_in_the_url_are_refused() {
        for url in [
            "https://user:pass@hooks.example.com/x",
            "https://user@hooks.example.com/x",
            "https://:pass@hooks.example.com/x",
        ] {
            assert_eq!(reason_of(url, true), Some(Reason::Credentials), "{url}");
        }
    }

    #[test]
    fn ip_literal_hosts_are_checked_by_the_address_rule() {
        for url in [
            "https://127.0.0.1/x",
            "https://169.254.169.254/latest/meta-data/",
            "https://10.1.2.3/x",
            "https://[::1]/x",
            "https://[::ffff:127.0.0.1]/x",
            "https://[fd00::1]/x",
            "https://[fe80::1]/x",
            "https://0.0.0.0/x",
            // Numeric forms the URL standard normalises to 127.0.0.1 / 169.254.169.254.
            "https://2130706433/x",
            "https://0x7f.1/x",
            "https://0177.0.0.1/x",
            "https://127.1/x",
            "https://0xa9fea9fe/x",
            // Names reserved for loopback (RFC 6761).
            "https://localhost/x",
            "https://LOCALHOST./x",
            "https://api.localhost/x",
        ] {
            assert_eq!(
                reason_of(url, false),
                Some(Reason::ForbiddenAddress),
                "{url}"
            );
            assert_eq!(reason_of(url, true), None, "{url} with allow_insecure");
        }
    }
}
