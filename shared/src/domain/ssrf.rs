//! Where webhooks may point: https to public addresses only. Checked on the
//! URL at registration and again on every resolved address at delivery time
//! (so a name that later resolves inward is still refused).
//!
//! An address is refused when it falls in any block of the IANA IPv4 and IPv6
//! Special-Purpose Address Registries (plus multicast and the deprecated IPv6
//! blocks), or, for IPv6, anywhere outside global unicast 2000::/3.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const MAX_URL_LEN: usize = 2048;

/// Local development may deliver over plain http to loopback receivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetRules {
    pub allow_loopback_http: bool,
}

// Reasons, as they appear in "must not point at {why} ({ip})".
const LOOPBACK: &str = "a loopback address";
const PRIVATE: &str = "a private network address";
const RESERVED: &str = "a reserved address";
const DOCUMENTATION: &str = "a documentation address";
const NAT64: &str = "a NAT64 address";
const CGNAT: &str = "a carrier-grade NAT address";
// 169.254.169.254 is the cloud metadata endpoint.
const METADATA: &str = "a link-local (cloud metadata) address";
const LINK_LOCAL: &str = "a link-local address";
// fc00::/7 includes AWS's metadata address fd00:ec2::254.
const UNIQUE_LOCAL: &str = "a unique-local (private) address";
const SITE_LOCAL: &str = "a site-local (deprecated) address";
const IPV4_MAPPED: &str = "an IPv4-mapped address";
const IPV4_COMPATIBLE: &str = "an IPv4-compatible (deprecated) address";
const SIX_TO_FOUR: &str = "a 6to4 address";
const TEREDO: &str = "a Teredo address";

/// A special-purpose IPv4 block and why a webhook may not point into it.
struct V4Block {
    net: Ipv4Addr,
    len: u32,
    why: &'static str,
}

const fn v4(o: [u8; 4], len: u32, why: &'static str) -> V4Block {
    V4Block {
        net: Ipv4Addr::new(o[0], o[1], o[2], o[3]),
        len,
        why,
    }
}

/// Where an IPv6 block carries an IPv4 address, so the reason can name what
/// the embedded address is.
#[derive(Clone, Copy)]
enum Embeds {
    Nothing,
    /// The last 32 bits (IPv4-mapped, IPv4-compatible, NAT64 /96).
    Low32,
    /// Bits 16–48 (6to4, 2002:AABB:CCDD::/48).
    SixToFour,
    /// The Teredo client: the last 32 bits, inverted.
    Teredo,
}

impl Embeds {
    fn v4(self, bits: u128) -> Option<Ipv4Addr> {
        let v4 = match self {
            Embeds::Nothing => return None,
            Embeds::Low32 => bits as u32,
            Embeds::SixToFour => (bits >> 80) as u32,
            Embeds::Teredo => !(bits as u32),
        };
        Some(Ipv4Addr::from_bits(v4))
    }
}

/// A special-purpose IPv6 block and why a webhook may not point into it.
struct V6Block {
    net: Ipv6Addr,
    len: u32,
    why: &'static str,
    embeds: Embeds,
}

const fn v6(s: [u16; 8], len: u32, why: &'static str) -> V6Block {
    V6Block {
        net: Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]),
        len,
        why,
        embeds: Embeds::Nothing,
    }
}

impl V6Block {
    const fn embedding(self, embeds: Embeds) -> Self {
        V6Block { embeds, ..self }
    }
}

fn mask32(len: u32) -> u32 {
    u32::MAX.checked_shl(32 - len).unwrap_or(0)
}

fn mask128(len: u32) -> u128 {
    u128::MAX.checked_shl(128 - len).unwrap_or(0)
}

impl V4Block {
    fn contains(&self, bits: u32) -> bool {
        bits & mask32(self.len) == self.net.to_bits()
    }
}

impl V6Block {
    fn contains(&self, bits: u128) -> bool {
        bits & mask128(self.len) == self.net.to_bits()
    }
}

/// The IANA IPv4 Special-Purpose Address Registry (as of 2025), in its
/// order, then multicast. Comments give the registry's name and RFC.
const V4_SPECIAL: &[V4Block] = &[
    v4([0, 0, 0, 0], 8, RESERVED),         // "This network", RFC 791 §3.2
    v4([0, 0, 0, 0], 32, RESERVED),        // "This host on this network", RFC 1122 §3.2.1.3
    v4([10, 0, 0, 0], 8, PRIVATE),         // Private-Use, RFC 1918
    v4([100, 64, 0, 0], 10, CGNAT),        // Shared Address Space, RFC 6598
    v4([127, 0, 0, 0], 8, LOOPBACK),       // Loopback, RFC 1122 §3.2.1.3
    v4([169, 254, 0, 0], 16, METADATA),    // Link Local, RFC 3927
    v4([172, 16, 0, 0], 12, PRIVATE),      // Private-Use, RFC 1918
    v4([192, 0, 0, 0], 24, RESERVED),      // IETF Protocol Assignments, RFC 6890 §2.1
    v4([192, 0, 0, 0], 29, RESERVED),      // IPv4 Service Continuity Prefix, RFC 7335
    v4([192, 0, 0, 8], 32, RESERVED),      // IPv4 dummy address, RFC 7600
    v4([192, 0, 0, 9], 32, RESERVED),      // Port Control Protocol Anycast, RFC 7723
    v4([192, 0, 0, 10], 32, RESERVED),     // TURN Anycast, RFC 8155
    v4([192, 0, 0, 170], 32, RESERVED),    // NAT64/DNS64 Discovery, RFC 8880, RFC 7050
    v4([192, 0, 0, 171], 32, RESERVED),    // NAT64/DNS64 Discovery, RFC 8880, RFC 7050
    v4([192, 0, 2, 0], 24, DOCUMENTATION), // TEST-NET-1, RFC 5737
    v4([192, 31, 196, 0], 24, RESERVED),   // AS112-v4, RFC 7535
    v4([192, 52, 193, 0], 24, RESERVED),   // AMT, RFC 7450
    v4([192, 88, 99, 0], 24, RESERVED),    // Deprecated (6to4 Relay Anycast), RFC 7526
    v4([192, 88, 99, 2], 32, RESERVED),    // 6a44-relay anycast address, RFC 6751
    v4([192, 168, 0, 0], 16, PRIVATE),     // Private-Use, RFC 1918
    v4([192, 175, 48, 0], 24, RESERVED),   // Direct Delegation AS112 Service, RFC 7534
    v4([198, 18, 0, 0], 15, RESERVED),     // Benchmarking, RFC 2544
    v4([198, 51, 100, 0], 24, DOCUMENTATION), // TEST-NET-2, RFC 5737
    v4([203, 0, 113, 0], 24, DOCUMENTATION), // TEST-NET-3, RFC 5737
    v4([240, 0, 0, 0], 4, RESERVED),       // Reserved, RFC 1112 §4
    v4([255, 255, 255, 255], 32, RESERVED), // Limited Broadcast, RFC 8190, RFC 919 §7
    // Not in the registry, but never a webhook receiver.
    v4([224, 0, 0, 0], 4, RESERVED), // Multicast, RFC 5771
];

/// The IANA IPv6 Special-Purpose Address Registry (as of 2025), in its
/// order, then the blocks it leaves out. Comments give the name and RFC.
const V6_SPECIAL: &[V6Block] = &[
    v6([0, 0, 0, 0, 0, 0, 0, 1], 128, LOOPBACK), // Loopback Address, RFC 4291
    v6([0, 0, 0, 0, 0, 0, 0, 0], 128, RESERVED), // Unspecified Address, RFC 4291
    v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96, IPV4_MAPPED) // IPv4-mapped Address, RFC 4291
        .embedding(Embeds::Low32),
    // NAT64 can reach private IPv4 space.
    v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96, NAT64) // IPv4-IPv6 Translat., RFC 6052
        .embedding(Embeds::Low32),
    v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, NAT64), // Local-Use IPv4/IPv6 Translat., RFC 8215
    v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64, RESERVED),  // Discard-Only Address Block, RFC 6666
    v6([0x100, 0, 0, 1, 0, 0, 0, 0], 64, RESERVED),  // Dummy IPv6 Prefix, RFC 9780
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23, RESERVED), // IETF Protocol Assignments, RFC 2928
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32, TEREDO) // TEREDO, RFC 4380, RFC 8190
        .embedding(Embeds::Teredo),
    v6([0x2001, 1, 0, 0, 0, 0, 0, 1], 128, RESERVED), // Port Control Protocol Anycast, RFC 7723
    v6([0x2001, 1, 0, 0, 0, 0, 0, 2], 128, RESERVED), // TURN Anycast, RFC 8155
    v6([0x2001, 1, 0, 0, 0, 0, 0, 3], 128, RESERVED), // DNS-SD SRP Anycast, RFC 9665
    v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48, RESERVED),  // Benchmarking, RFC 5180
    v6([0x2001, 3, 0, 0, 0, 0, 0, 0], 32, RESERVED),  // AMT, RFC 7450
    v6([0x2001, 4, 0x112, 0, 0, 0, 0, 0], 48, RESERVED), // AS112-v6, RFC 7535
    v6([0x2001, 0x10, 0, 0, 0, 0, 0, 0], 28, RESERVED), // Deprecated (previously ORCHID), RFC 4843
    v6([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28, RESERVED), // ORCHIDv2, RFC 7343
    v6([0x2001, 0x30, 0, 0, 0, 0, 0, 0], 28, RESERVED), // Drone Remote ID DETs, RFC 9374
    v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, DOCUMENTATION), // Documentation, RFC 3849
    v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16, SIX_TO_FOUR) // 6to4, RFC 3056
        .embedding(Embeds::SixToFour),
    v6([0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0], 48, RESERVED), // Direct Delegation AS112, RFC 7534
    v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, DOCUMENTATION),    // Documentation, RFC 9637
    v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16, RESERVED), // Segment Routing (SRv6) SIDs, RFC 9602
    v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, UNIQUE_LOCAL), // Unique-Local, RFC 4193, RFC 8190
    v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, LINK_LOCAL), // Link-Local Unicast, RFC 4291
    // Not in the registry (deprecated or not unicast), but never a receiver.
    v6([0, 0, 0, 0, 0, 0, 0, 0], 96, IPV4_COMPATIBLE) // RFC 4291 §2.5.5.1
        .embedding(Embeds::Low32),
    v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, SITE_LOCAL), // RFC 3879
    v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, RESERVED),    // Multicast, RFC 4291 §2.7
];

fn v4_problem(ip: Ipv4Addr) -> Option<&'static str> {
    let bits = ip.to_bits();
    // The most specific block gives the reason.
    V4_SPECIAL
        .iter()
        .filter(|b| b.contains(bits))
        .max_by_key(|b| b.len)
        .map(|b| b.why)
}

fn v6_problem(ip: Ipv6Addr) -> Option<&'static str> {
    let bits = ip.to_bits();
    let Some(block) = V6_SPECIAL
        .iter()
        .filter(|b| b.contains(bits))
        .max_by_key(|b| b.len)
    else {
        // Only 2000::/3 is allocated for global unicast.
        return (bits >> 125 != 0b001).then_some(RESERVED);
    };
    // The block is refused whatever it carries, but an embedded IPv4 address
    // that is itself special says more ("[::127.0.0.1]" is a loopback).
    let inner = block.embeds.v4(bits).and_then(v4_problem);
    Some(inner.unwrap_or(block.why))
}

/// Why an address may not be a webhook target, if it may not.
pub fn ip_problem(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_problem(v4),
        IpAddr::V6(v6) => v6_problem(v6),
    }
}

/// Checks one resolved address for a URL with `scheme`.
pub fn check_address(ip: IpAddr, scheme: &str, rules: TargetRules) -> Result<(), String> {
    // Only 127/8, ::1 and IPv4-mapped loopback: a local receiver is never
    // reached through the deprecated IPv4-compatible ::127.0.0.1.
    let loopback = match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v| v.is_loopback()),
    };
    if loopback && rules.allow_loopback_http && scheme == "http" {
        return Ok(());
    }
    match ip_problem(ip) {
        Some(why) => Err(format!("must not point at {why} ({ip})")),
        None if scheme != "https" => Err("must use https".into()),
        None => Ok(()),
    }
}

/// Checks a callback URL's form (and the host, when it is an IP literal).
pub fn check_url(raw: &str, rules: TargetRules) -> Result<url::Url, String> {
    if raw.len() > MAX_URL_LEN {
        return Err(format!("must be at most {MAX_URL_LEN} characters"));
    }
    let url = url::Url::parse(raw.trim()).map_err(|_| "is not a URL".to_string())?;
    let scheme = url.scheme();
    if scheme != "https" && !(rules.allow_loopback_http && scheme == "http") {
        return Err("must use https".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials".into());
    }
    if url.fragment().is_some() {
        return Err("must not contain a fragment".into());
    }
    match url.host() {
        None => Err("must have a host".into()),
        Some(url::Host::Ipv4(ip)) => {
            check_address(IpAddr::V4(ip), scheme, rules).map(|_| url.clone())
        }
        Some(url::Host::Ipv6(ip)) => {
            check_address(IpAddr::V6(ip), scheme, rules).map(|_| url.clone())
        }
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            let internal = name == "localhost"
                || name.ends_with(".localhost")
                || name.ends_with(".internal")
                || name.ends_with(".local")
                || name == "metadata.google.internal";
            if internal
                && !(rules.allow_loopback_http
                    && scheme == "http"
                    && (name == "localhost" || name.ends_with(".localhost")))
            {
                return Err("must not point at an internal host name".into());
            }
            if !name.contains('.') && name != "localhost" {
                return Err("must be a fully qualified host name".into());
            }
            Ok(url.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROD: TargetRules = TargetRules {
        allow_loopback_http: false,
    };
    const LOCAL: TargetRules = TargetRules {
        allow_loopback_http: true,
    };

    #[test]
    fn public_https_passes() {
        assert!(check_url("https://hooks.example.com/pulsara?x=1", PROD).is_ok());
        assert!(check_url("https://93.184.216.34/hook", PROD).is_ok());
        assert!(check_address("2606:4700::1111".parse().unwrap(), "https", PROD).is_ok());
    }

    #[test]
    fn inward_targets_are_refused() {
        for url in [
            "http://hooks.example.com/x",
            "https://127.0.0.1/x",
            "https://10.0.0.5/x",
            "https://172.16.3.4/x",
            "https://192.168.1.1/x",
            "https://[::1]/x",
            "https://169.254.169.254/latest/meta-data",
            "https://[fd00:ec2::254]/x",
            "https://[::ffff:10.0.0.1]/x",
            "https://100.64.0.1/x",
            "https://0.0.0.0/x",
            "https://localhost/x",
            "https://metadata.google.internal/x",
            "https://intranet/x",
            "ftp://example.com/x",
            "https://user:pw@example.com/x",
        ] {
            assert!(check_url(url, PROD).is_err(), "{url}");
        }
        assert!(check_url(&format!("https://example.com/{}", "a".repeat(3000)), PROD).is_err());
    }

    #[test]
    fn resolved_addresses_are_checked_too() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "169.254.169.254",
            "::1",
            "fe80::1",
            "fc00::1",
        ] {
            assert!(
                check_address(ip.parse().unwrap(), "https", PROD).is_err(),
                "{ip}"
            );
        }
    }

    #[test]
    fn local_mode_allows_only_http_to_loopback() {
        assert!(check_url("http://127.0.0.1:8080/hook", LOCAL).is_ok());
        assert!(check_url("http://localhost:8080/hook", LOCAL).is_ok());
        assert!(check_url("http://127.0.0.1:8080/hook", PROD).is_err());
        assert!(check_url("https://127.0.0.1/hook", LOCAL).is_err());
        assert!(check_url("https://localhost/hook", LOCAL).is_err());
        assert!(check_url("http://10.0.0.5/hook", LOCAL).is_err());
        assert!(
            check_url("http://example.com/hook", LOCAL).is_err()
                || check_address("93.184.216.34".parse().unwrap(), "http", LOCAL).is_err()
        );
        assert!(check_address("93.184.216.34".parse().unwrap(), "http", LOCAL).is_err());
    }

    /// The first, middle and last addresses of every block are refused; the
    /// addresses just outside it are refused only if some other rule says so.
    /// Blocks come as (first, last, row name) over `u128`, whatever the family.
    fn check_blocks(
        blocks: impl Iterator<Item = (u128, u128, String)>,
        ip_of: impl Fn(u128) -> Option<IpAddr>,
        special: impl Fn(u128) -> bool,
    ) {
        for (first, last, row) in blocks {
            for bits in [first, first + (last - first) / 2, last] {
                let ip = ip_of(bits).expect("inside the family");
                assert!(ip_problem(ip).is_some(), "{ip} in {row} passes");
                assert!(check_address(ip, "https", PROD).is_err(), "{ip} in {row}");
            }
            for bits in [first.checked_sub(1), last.checked_add(1)]
                .into_iter()
                .flatten()
            {
                if let Some(ip) = ip_of(bits) {
                    assert_eq!(
                        ip_problem(ip).is_some(),
                        special(bits),
                        "{ip} next to {row}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_v4_block_is_refused_and_only_it() {
        let blocks = V4_SPECIAL.iter().map(|b| {
            let first = b.net.to_bits();
            assert_eq!(first & !mask32(b.len), 0, "{} has host bits set", b.net);
            let last = first | !mask32(b.len);
            (
                first.into(),
                last.into(),
                format!("{}/{} ({})", b.net, b.len, b.why),
            )
        });
        let ip_of = |bits: u128| Some(IpAddr::V4(Ipv4Addr::from_bits(u32::try_from(bits).ok()?)));
        let special = |bits: u128| V4_SPECIAL.iter().any(|o| o.contains(bits as u32));
        check_blocks(blocks, ip_of, special);
    }

    #[test]
    fn every_v6_block_is_refused_and_only_it() {
        let blocks = V6_SPECIAL.iter().map(|b| {
            let first = b.net.to_bits();
            assert_eq!(first & !mask128(b.len), 0, "{} has host bits set", b.net);
            let last = first | !mask128(b.len);
            (first, last, format!("{}/{} ({})", b.net, b.len, b.why))
        });
        let ip_of = |bits: u128| Some(IpAddr::V6(Ipv6Addr::from_bits(bits)));
        // Outside 2000::/3 (global unicast) everything is refused.
        let special =
            |bits: u128| bits >> 125 != 0b001 || V6_SPECIAL.iter().any(|o| o.contains(bits));
        check_blocks(blocks, ip_of, special);
    }

    fn why(ip: &str) -> Option<&'static str> {
        ip_problem(ip.parse().unwrap())
    }

    #[test]
    fn embedded_ipv4_is_named_when_special() {
        for (ip, reason) in [
            ("::127.0.0.1", LOOPBACK),
            ("::10.0.0.1", PRIVATE),
            ("::169.254.169.254", METADATA),
            ("::8.8.8.8", IPV4_COMPATIBLE),
            ("::ffff:169.254.169.254", METADATA),
            ("::ffff:127.0.0.1", LOOPBACK),
            ("::ffff:8.8.8.8", IPV4_MAPPED),
            ("64:ff9b::10.0.0.1", PRIVATE),
            ("64:ff9b::a9fe:a9fe", METADATA),
            ("64:ff9b::8.8.8.8", NAT64),
            ("2002:7f00:0001::1", LOOPBACK),
            ("2002:0808:0808::1", SIX_TO_FOUR),
            // Client 192.0.2.45 (TEST-NET-1), the RFC 4380 example.
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", DOCUMENTATION),
            ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", TEREDO),
            ("fd00:ec2::254", UNIQUE_LOCAL),
            ("::1", LOOPBACK),
            ("::", RESERVED),
        ] {
            assert_eq!(why(ip), Some(reason), "{ip}");
        }
    }

    #[test]
    fn the_most_specific_block_names_the_reason() {
        assert_eq!(why("10.0.0.1"), Some(PRIVATE));
        assert_eq!(why("192.0.2.1"), Some(DOCUMENTATION));
        assert_eq!(why("2001:db8::1"), Some(DOCUMENTATION));
        assert_eq!(why("2001:1::1"), Some(RESERVED));
        // Not special-purpose, but not global unicast either.
        assert_eq!(why("4000::1"), Some(RESERVED));
        assert_eq!(why("::ffff:0:10.0.0.1"), Some(RESERVED));
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.216.34",
            "2606:4700:4700::1111",
            "2a00:1450:4001:82a::200e",
        ] {
            assert_eq!(why(ip), None, "{ip}");
            assert!(
                check_address(ip.parse().unwrap(), "https", PROD).is_ok(),
                "{ip}"
            );
        }
    }

    #[test]
    fn ipv6_literals_carrying_inward_ipv4_are_refused_at_registration() {
        for (url, reason) in [
            ("https://[::127.0.0.1]/hook", LOOPBACK),
            ("https://[::10.0.0.1]/hook", PRIVATE),
            ("https://[::169.254.169.254]/latest/meta-data", METADATA),
            ("https://[2002:7f00:1::1]/x", LOOPBACK),
            ("https://[2002:a9fe:a9fe::1]/x", METADATA),
            (
                "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/x",
                DOCUMENTATION,
            ),
            ("https://[64:ff9b::10.0.0.1]/x", PRIVATE),
            ("https://[3fff::1]/x", DOCUMENTATION),
            ("https://[5f00::1]/x", RESERVED),
        ] {
            let err = check_url(url, PROD).unwrap_err();
            assert!(
                err.starts_with(&format!("must not point at {reason} (")),
                "{url}: {err}"
            );
        }
        assert!(check_url("https://[2606:4700:4700::1111]/hook", PROD).is_ok());
    }

    #[test]
    fn only_plain_loopback_gets_the_local_exception() {
        for ip in ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"] {
            assert!(
                check_address(ip.parse().unwrap(), "http", LOCAL).is_ok(),
                "{ip}"
            );
            assert!(
                check_address(ip.parse().unwrap(), "http", PROD).is_err(),
                "{ip}"
            );
        }
        for ip in ["::127.0.0.1", "2002:7f00:1::1", "64:ff9b::127.0.0.1"] {
            assert!(
                check_address(ip.parse().unwrap(), "http", LOCAL).is_err(),
                "{ip}"
            );
        }
        assert!(check_url("http://[::1]:8080/hook", LOCAL).is_ok());
        assert!(check_url("http://[::127.0.0.1]:8080/hook", LOCAL).is_err());
    }
}
