//! The guard against server-side request forgery: HTTP tools may not reach loopback,
//! private or link-local addresses unless explicitly allowed, nor cloud metadata and
//! credential services ever.
//!
//! Hostnames are checked by the HTTP client's own resolver, so the address that is checked
//! is the address that is connected to (no window for DNS rebinding); IP literals, which
//! skip the resolver, are checked before the request and on every redirect. Outbound
//! clients ignore `HTTP_PROXY` and friends ([`outbound_client`]): behind a proxy only the
//! proxy's address would be resolved here, and the proxy would reach any address.
//!
//! An IPv6 address that carries an IPv4 address (mapped, compatible, translated, 6to4,
//! NAT64, Teredo) is judged by the IPv4 address too, so no form of a refused address
//! slips through.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Instance metadata and credential services: refused whatever `ALLOW_PRIVATE_TOOL_URLS`
/// says, in every IPv6 form of the IPv4 ones. No tool has a reason to read the server's
/// cloud credentials. Keep this list the one place such endpoints are named.
pub const ALWAYS_REFUSED: [(&str, &str); 8] = [
    (
        "169.254.169.254",
        "instance metadata (AWS, GCP, Azure, OpenStack, Oracle …)",
    ),
    ("fd00:ec2::254", "AWS instance metadata over IPv6"),
    ("169.254.170.2", "AWS ECS task credentials"),
    ("169.254.170.23", "AWS EKS Pod Identity credentials"),
    ("fd00:ec2::23", "AWS EKS Pod Identity credentials over IPv6"),
    ("192.0.0.192", "Oracle Cloud instance metadata"),
    ("100.100.100.200", "Alibaba Cloud instance metadata"),
    (
        "168.63.129.16",
        "Azure WireServer (host agent, certificates)",
    ),
];

/// The IPv4 addresses an IPv6 address carries, in each form that routes or translates to
/// IPv4: mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, translated `::ffff:0:a.b.c.d`,
/// 6to4 `2002:AABB:CCDD::/48`, NAT64 `64:ff9b::/96` and the local-use `64:ff9b:1::/48`
/// (every prefix length of RFC 6052), and both ends of Teredo `2001:0::/32`.
pub fn embedded_ipv4(v6: Ipv6Addr) -> Vec<Ipv4Addr> {
    let s = v6.segments();
    let bytes = v6.octets();
    let last = Ipv4Addr::new(bytes[12], bytes[13], bytes[14], bytes[15]);
    let mut found = Vec::new();
    if s[..5] == [0; 5] && s[5] == 0xffff {
        found.push(last); // mapped
    }
    if s[..6] == [0; 6] && u32::from(last) > 1 {
        found.push(last); // compatible (deprecated; `::` and `::1` are IPv6's own)
    }
    if s[..4] == [0; 4] && s[4] == 0xffff && s[5] == 0 {
        found.push(last); // translated (SIIT)
    }
    if s[0] == 0x2002 {
        found.push(Ipv4Addr::new(bytes[2], bytes[3], bytes[4], bytes[5])); // 6to4
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        found.push(last); // NAT64 well-known prefix
    }
    if s[..3] == [0x64, 0xff9b, 1] {
        // Local-use NAT64: the IPv4 address sits where the (unknown) prefix length puts
        // it, skipping bits 64..72; try each length RFC 6052 allows.
        let at = |positions: [usize; 4]| {
            Ipv4Addr::new(
                bytes[positions[0]],
                bytes[positions[1]],
                bytes[positions[2]],
                bytes[positions[3]],
            )
        };
        found.extend([
            at([6, 7, 9, 10]),    // /48
            at([7, 9, 10, 11]),   // /56
            at([9, 10, 11, 12]),  // /64
            at([12, 13, 14, 15]), // /96
        ]);
    }
    if s[0] == 0x2001 && s[1] == 0 {
        // Teredo: the server's address, and the client's, stored inverted.
        found.push(Ipv4Addr::new(bytes[4], bytes[5], bytes[6], bytes[7]));
        found.push(Ipv4Addr::from(!u32::from(last)));
    }
    found
}

/// True for addresses a tool call must not reach by default.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if embedded_ipv4(v6).into_iter().any(is_forbidden_v4) {
                return true;
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (first & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
                || (first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
                || (first == 0x0064 && v6.segments()[1] == 0xff9b) // NAT64 of any v4
                || v6.segments()[..6] == [0; 6] // compatible and reserved ::/96
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
        || (a == 198 && (b & 0xfe) == 18) // benchmarking 198.18.0.0/15
        || a >= 240 // reserved
        || is_always_refused(IpAddr::V4(ip))
}

fn is_always_refused(ip: IpAddr) -> bool {
    ALWAYS_REFUSED
        .iter()
        .any(|(address, _)| address.parse::<IpAddr>().is_ok_and(|refused| refused == ip))
}

/// Metadata and credential services ([`ALWAYS_REFUSED`]), in any form: refused even when
/// private addresses are allowed.
pub fn is_metadata(ip: IpAddr) -> bool {
    if is_always_refused(ip) {
        return true;
    }
    match ip {
        IpAddr::V4(_) => false,
        IpAddr::V6(v6) => embedded_ipv4(v6)
            .into_iter()
            .any(|v4| is_always_refused(IpAddr::V4(v4))),
    }
}

/// A client for outbound calls (tools, upstream servers, the embedding endpoint) that
/// ignores proxy environment variables, so the address the resolver checks is the one
/// connected to.
pub fn outbound_client() -> reqwest::ClientBuilder {
    reqwest::Client::builder().no_proxy()
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

    #[test]
    fn every_ipv6_form_of_loopback_is_forbidden() {
        for form in [
            "::127.0.0.1",                          // compatible
            "::ffff:0:7f00:1",                      // translated
            "2002:7f00:1::",                        // 6to4
            "2002:a00:1::1",                        // 6to4 of 10.0.0.1
            "64:ff9b::7f00:1",                      // NAT64
            "64:ff9b:1::7f00:1",                    // local-use NAT64
            "2001:0:4136:e378:8000:63bf:80ff:fffe", // Teredo client 127.0.0.1
            "fec0::1",                              // site-local
        ] {
            let ip: IpAddr = form.parse().unwrap();
            assert!(is_forbidden(ip), "{form}");
        }
        assert!(!is_forbidden("2002:808:808::1".parse().unwrap()));
        assert!(is_forbidden("168.63.129.16".parse().unwrap()));
        assert!(is_forbidden("198.18.0.1".parse().unwrap()));
    }

    #[test]
    fn credential_endpoints_are_refused_in_every_form_and_mode() {
        let relaxed = UrlGuard {
            allow_private: true,
        };
        for refused in [
            "169.254.169.254",
            "169.254.170.2",
            "169.254.170.23",
            "192.0.0.192",
            "100.100.100.200",
            "168.63.129.16",
            "fd00:ec2::254",
            "fd00:ec2::23",
            "::ffff:169.254.169.254",
            "::169.254.169.254",
            "::ffff:0:a9fe:a9fe",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::a9fe:aa02",
            "64:ff9b:1:a9fe:a9:fe00::", // local-use NAT64, /48
            "64:ff9b:1::a9fe:a9fe",     // local-use NAT64, /96
            "2002:a9fe:a9fe::",
            "2001:0:4136:e378:8000:63bf:5601:5601", // Teredo client 169.254.169.254
        ] {
            let ip: IpAddr = refused.parse().unwrap();
            assert!(is_metadata(ip), "{refused}");
            assert!(!relaxed.allows(ip), "{refused}");
        }
        for allowed in [
            "10.0.0.1",
            "127.0.0.1",
            "169.254.1.1",
            "::1",
            "64:ff9b::a00:1",
        ] {
            assert!(relaxed.allows(allowed.parse().unwrap()), "{allowed}");
        }
    }

    #[test]
    fn outbound_clients_build() {
        assert!(outbound_client().build().is_ok());
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
