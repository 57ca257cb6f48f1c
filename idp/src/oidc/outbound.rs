//! Calls the IdP makes to addresses that someone outside registered (dynamically registered
//! clients' back-channel logout URIs). Such an address must not become a way into our own network
//! (blind SSRF): only https, never a loopback, private, link-local, shared or metadata address —
//! checked when the client registers and again at call time, on the addresses the name resolves to
//! then (the connection goes only to addresses that passed), with no redirects followed. In
//! development (an `http://` public URL) loopback https-less addresses are allowed, so that a
//! developer's own relying party on 127.0.0.1 works.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether `ip` is an address on the public internet (not ours, not anybody's private one).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254/16, cloud metadata 169.254.169.254 among them
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (carrier NAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local (fc00::/7, incl. fd00:ec2::254 metadata)
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64 (incl. local-use 64:ff9b:1::/48)
        || (s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 && s[4] == 0xffff) // SIIT translated
        || (s[0] == 0x2001 && s[1] == 0) // Teredo: an IPv4 address inside
        || (s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0) // discard-only
        || s[0] == 0x2002 // 6to4: an IPv4 address inside
        || (s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 && s[4] == 0 && s[5] == 0))
    // IPv4-compatible
}

/// What an address may be for a call made for a registered client.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Development: plain http and loopback addresses are allowed too.
    pub development: bool,
}

impl Policy {
    fn allows(self, ip: IpAddr) -> bool {
        is_public(ip) || (self.development && ip.is_loopback())
    }

    /// Checks a URI the IdP will call: scheme, and the host when it is an address literal (names
    /// are checked when resolved, at call time). The reason when refused.
    pub fn check_uri(self, uri: &str) -> Result<url::Url, String> {
        let u = url::Url::parse(uri).map_err(|_| "not an absolute URI".to_owned())?;
        let host = u.host().ok_or_else(|| "names no host".to_owned())?;
        let loopback_name = |h: &str| {
            let h = h.trim_end_matches('.').to_ascii_lowercase();
            h == "localhost" || h.ends_with(".localhost")
        };
        let literal = match host {
            url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            url::Host::Domain(d) if loopback_name(d) => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            url::Host::Domain(_) => None,
        };
        if let Some(ip) = literal {
            if !self.allows(ip) {
                return Err(format!(
                    "{ip} is not a public address: the IdP does not call into private networks"
                ));
            }
        }
        let local = literal.is_some_and(|ip| ip.is_loopback());
        match u.scheme() {
            "https" => {}
            "http" if self.development && local => {}
            _ => return Err("must be an https URI".to_owned()),
        }
        if u.username() != "" || u.password().is_some() {
            return Err("must not carry credentials".to_owned());
        }
        Ok(u)
    }

    /// An HTTP client for such calls: short timeouts, no redirects, and a resolver that hands the
    /// connector only addresses this policy allows.
    pub fn client(self) -> Result<reqwest::Client, reqwest::Error> {
        reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .connect_timeout(std::time::Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::none())
            // A proxy from the environment would resolve and connect for us, past the guard.
            .no_proxy()
            .dns_resolver(Arc::new(Guarded(self)))
            .build()
    }
}

/// Resolves names with the system resolver and keeps only allowed addresses.
struct Guarded(Policy);

impl Resolve for Guarded {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| policy.allows(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROD: Policy = Policy { development: false };
    const DEV: Policy = Policy { development: true };

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "::ffff:0:7f00:1",
            "64:ff9b:1::a00:1",
            "2001:0:4136:e378::1",
            "100::1",
        ] {
            assert!(
                !is_public(ip.parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))),
                "{ip}"
            );
        }
        for ip in ["93.184.216.34", "2606:4700::1111", "1.1.1.1"] {
            assert!(
                is_public(ip.parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))),
                "{ip}"
            );
        }
    }

    #[test]
    fn uris_must_be_https_to_public_hosts() {
        assert!(PROD.check_uri("https://rp.example.fi/logout").is_ok());
        assert!(PROD.check_uri("http://rp.example.fi/logout").is_err());
        assert!(PROD.check_uri("https://127.0.0.1:8080/admin").is_err());
        assert!(PROD.check_uri("https://[::1]/x").is_err());
        assert!(PROD.check_uri("https://169.254.169.254/latest").is_err());
        assert!(PROD.check_uri("https://10.0.0.5/").is_err());
        assert!(PROD.check_uri("https://localhost/").is_err());
        assert!(PROD.check_uri("https://a.localhost./").is_err());
        assert!(PROD.check_uri("https://user:pw@rp.example.fi/").is_err());
        // Development: the developer's own relying party on loopback, over http too.
        assert!(DEV.check_uri("http://127.0.0.1:9000/bc").is_ok());
        assert!(DEV.check_uri("http://localhost:9000/bc").is_ok());
        assert!(DEV.check_uri("http://10.0.0.5/bc").is_err());
        assert!(DEV.check_uri("https://169.254.169.254/").is_err());
        assert!(DEV.check_uri("http://rp.example.fi/bc").is_err());
    }

    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused_at_call_time() {
        let refused = Guarded(PROD)
            .resolve(
                "localhost"
                    .parse::<Name>()
                    .unwrap_or_else(|_| unreachable!()),
            )
            .await;
        assert!(refused.is_err());
        let allowed = Guarded(DEV)
            .resolve(
                "localhost"
                    .parse::<Name>()
                    .unwrap_or_else(|_| unreachable!()),
            )
            .await;
        assert!(allowed.is_ok_and(|mut a| a.all(|x| x.ip().is_loopback())));
    }
}
