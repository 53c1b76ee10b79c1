//! Where webhooks may point: https to public addresses only. Checked on the
//! URL at registration and again on every resolved address at delivery time
//! (so a name that later resolves inward is still refused).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const MAX_URL_LEN: usize = 2048;

/// Local development may deliver over plain http to loopback receivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetRules {
    pub allow_loopback_http: bool,
}

fn v4_problem(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() {
        Some("a private network address")
    } else if ip.is_link_local() {
        // 169.254.169.254 is the cloud metadata endpoint.
        Some("a link-local (cloud metadata) address")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("a carrier-grade NAT address")
    } else if o[0] == 0
        || ip.is_broadcast()
        || ip.is_multicast()
        || o[0] >= 240
        || ip.is_documentation()
        || (o[0] == 198 && (o[1] & 0xfe) == 18)
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
    {
        // "this network", broadcast, multicast, class E, documentation,
        // benchmarking and IETF protocol ranges.
        Some("a reserved address")
    } else {
        None
    }
}

fn v6_problem(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_problem(v4);
    }
    let s = ip.segments();
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_unspecified() || ip.is_multicast() {
        Some("a reserved address")
    } else if (s[0] & 0xfe00) == 0xfc00 {
        // fc00::/7, which includes AWS's metadata address fd00:ec2::254.
        Some("a unique-local (private) address")
    } else if (s[0] & 0xffc0) == 0xfe80 {
        Some("a link-local address")
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        Some("a documentation address")
    } else if s[0] == 0x64 && s[1] == 0xff9b {
        // NAT64 can reach private IPv4 space.
        Some("a NAT64 address")
    } else {
        None
    }
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
}
