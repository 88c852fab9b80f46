//! The guard against server-side request forgery: HTTP tools may not reach loopback,
//! private or link-local addresses unless explicitly allowed, nor cloud metadata services
//! ever.
//!
//! Hostnames are checked by the HTTP client's own resolver, so the address that is checked
//! is the address that is connected to (no window for DNS rebinding); IP literals, which
//! skip the resolver, are checked before the request and on every redirect.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// True for addresses a tool call must not reach by default.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_forbidden_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
                || (first == 0x0064 && v6.segments()[1] == 0xff9b) // NAT64 of any v4
        }
    }
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // includes 169.254.169.254, the cloud metadata address
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT 100.64.0.0/10
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || a >= 240 // reserved
}

/// Cloud instance metadata services: refused even when private addresses are allowed,
/// since no tool has a reason to read a server's credentials.
pub fn is_metadata(ip: IpAddr) -> bool {
    const METADATA: [&str; 3] = ["169.254.169.254", "fd00:ec2::254", "100.100.100.200"];
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    METADATA
        .iter()
        .any(|m| m.parse::<IpAddr>().is_ok_and(|m| m == ip))
}

/// Which addresses tool calls may reach.
#[derive(Debug, Clone, Copy)]
pub struct UrlGuard {
    pub allow_private: bool,
}

impl UrlGuard {
    pub fn allows(&self, ip: IpAddr) -> bool {
        !is_metadata(ip) && (self.allow_private || !is_forbidden(ip))
    }

    /// Checks a URL whose host is an IP literal; hostnames are checked by the resolver.
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), String> {
        let literal = match url.host() {
            Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
            Some(url::Host::Domain(_)) => None,
            None => return Err("the URL has no host".into()),
        };
        match literal {
            Some(ip) if !self.allows(ip) => Err(format!(
                "refused to call {ip}: private, loopback, link-local and metadata addresses \
                 are not allowed (ALLOW_PRIVATE_TOOL_URLS)"
            )),
            _ => Ok(()),
        }
    }
}

/// Resolves with the system resolver and drops addresses the guard refuses; a name that
/// resolves only to refused addresses fails to connect.
pub struct GuardedResolver(pub UrlGuard);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let guard = self.0;
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = resolved
                .iter()
                .copied()
                .filter(|addr| guard.allows(addr.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(format!(
                    "refused to call {host}: it resolves to private, loopback or link-local \
                     addresses (ALLOW_PRIVATE_TOOL_URLS)"
                )
                .into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_forbidden() {
        for forbidden in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_forbidden(forbidden.parse().unwrap()), "{forbidden}");
        }
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "100.128.0.1"] {
            assert!(!is_forbidden(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn literal_urls_are_checked() {
        let url = |s: &str| reqwest::Url::parse(s).unwrap();
        let strict = UrlGuard {
            allow_private: false,
        };
        assert!(strict.check_url(&url("http://127.0.0.1:8080/x")).is_err());
        assert!(strict.check_url(&url("http://[::1]/x")).is_err());
        assert!(
            strict
                .check_url(&url("http://169.254.169.254/latest/meta-data"))
                .is_err()
        );
        assert!(strict.check_url(&url("https://8.8.8.8/")).is_ok());
        assert!(strict.check_url(&url("https://tools.example/")).is_ok());
        let relaxed = UrlGuard {
            allow_private: true,
        };
        assert!(relaxed.check_url(&url("http://127.0.0.1:8080/x")).is_ok());
        assert!(relaxed.check_url(&url("http://10.0.0.1/x")).is_ok());
        assert!(
            relaxed
                .check_url(&url("http://169.254.169.254/latest"))
                .is_err()
        );
        assert!(
            relaxed
                .check_url(&url("http://[::ffff:169.254.169.254]/"))
                .is_err()
        );
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_private_addresses() {
        let name: Name = "localhost".parse().unwrap();
        let guard = UrlGuard {
            allow_private: false,
        };
        let err = match GuardedResolver(guard).resolve(name).await {
            Ok(_) => panic!("localhost must be refused"),
            Err(err) => err,
        };
        assert!(err.to_string().contains("refused"), "{err}");
    }
}
