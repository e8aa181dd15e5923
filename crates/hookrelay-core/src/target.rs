//! The target policy: which IP addresses deliveries may connect to.
//!
//! Private, loopback, link-local, shared (CGNAT), unspecified, broadcast and multicast
//! addresses are refused unless an operator allows them with `HOOKRELAY_ALLOWED_TARGETS`.
//! The worker applies this to every address DNS returns, at connection time; the API applies
//! it to literal addresses in webhook URLs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::IpNet;

use crate::error::FieldError;

/// Why an address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// 10/8, 172.16/12, 192.168/16, fc00::/7.
    Private,
    /// 169.254/16 (cloud metadata lives here), fe80::/10.
    LinkLocal,
    /// 100.64/10, carrier-grade NAT.
    Shared,
    /// 0.0.0.0/8, ::.
    Unspecified,
    /// 224/4, ff00::/8.
    Multicast,
    /// 255.255.255.255, 240/4.
    Reserved,
}

impl AddressClass {
    fn describe(self) -> &'static str {
        match self {
            AddressClass::Loopback => "a loopback address",
            AddressClass::Private => "a private address",
            AddressClass::LinkLocal => "a link-local address",
            AddressClass::Shared => "a shared (carrier-grade NAT) address",
            AddressClass::Unspecified => "an unspecified address",
            AddressClass::Multicast => "a multicast address",
            AddressClass::Reserved => "a reserved address",
        }
    }
}

/// A refused target, with the message shown in the attempt record or the API error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("target {addr} is {}; allow it with HOOKRELAY_ALLOWED_TARGETS", class.describe())]
pub struct TargetRefused {
    /// The address.
    pub addr: IpAddr,
    /// Its class.
    pub class: AddressClass,
}

/// Classifies an address that is not publicly routable; `None` for a public one.
pub fn classify(addr: IpAddr) -> Option<AddressClass> {
    match addr {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return classify_v4(v4);
            }
            classify_v6(v6)
        }
    }
}

fn classify_v4(a: Ipv4Addr) -> Option<AddressClass> {
    let o = a.octets();
    if a.is_loopback() {
        Some(AddressClass::Loopback)
    } else if a.is_private() {
        Some(AddressClass::Private)
    } else if a.is_link_local() {
        Some(AddressClass::LinkLocal)
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some(AddressClass::Shared)
    } else if o[0] == 0 {
        Some(AddressClass::Unspecified)
    } else if a.is_multicast() {
        Some(AddressClass::Multicast)
    } else if o[0] >= 240
        // 192.0.0.0/24 (IETF protocol assignments; some clouds' metadata lives here),
        // 198.18.0.0/15 (benchmarking), and the three documentation networks.
        || (o[0] == 192 && o[1] == 0 && (o[2] == 0 || o[2] == 2))
        || (o[0] == 198 && (o[1] & 0xfe) == 18)
        || (o[0] == 198 && o[1] == 51 && o[2] == 100)
        || (o[0] == 203 && o[1] == 0 && o[2] == 113)
    {
        Some(AddressClass::Reserved)
    } else {
        None
    }
}

fn classify_v6(a: Ipv6Addr) -> Option<AddressClass> {
    let s = a.segments();
    if a.is_loopback() {
        Some(AddressClass::Loopback)
    } else if a.is_unspecified() {
        Some(AddressClass::Unspecified)
    } else if (s[0] & 0xfe00) == 0xfc00 {
        Some(AddressClass::Private)
    } else if (s[0] & 0xffc0) == 0xfe80 {
        Some(AddressClass::LinkLocal)
    } else if a.is_multicast() {
        Some(AddressClass::Multicast)
    } else if (s[0] & 0xffc0) == 0xfec0 {
        // Site-local (fec0::/10, deprecated but still routed by some networks).
        Some(AddressClass::Private)
    } else if s[0] == 0x2001 && s[1] == 0 {
        // Teredo (2001::/32): tunnels to an IPv4 host that cannot be checked here.
        Some(AddressClass::Reserved)
    } else if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        // Local-use NAT64 (64:ff9b:1::/48): translated inside the local network.
        Some(AddressClass::Private)
    } else if s[0..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64 (64:ff9b::/96): the last 32 bits are an IPv4 address a gateway connects to.
        classify_v4(Ipv4Addr::new(
            (s[6] >> 8) as u8,
            s[6] as u8,
            (s[7] >> 8) as u8,
            s[7] as u8,
        ))
    } else if s[0] == 0x2002 {
        // 6to4 (2002::/16): bits 16–47 are the IPv4 address of the relay's far end.
        classify_v4(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ))
    } else if let Some(v4) = a.to_ipv4() {
        // IPv4-compatible (deprecated) forms such as ::7f00:1.
        if s[0..6] == [0, 0, 0, 0, 0, 0] {
            classify_v4(v4)
        } else {
            None
        }
    } else {
        None
    }
}

/// Which addresses deliveries may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    allowed: Vec<IpNet>,
}

impl TargetPolicy {
    /// A policy that allows, beyond public addresses, the given networks.
    pub fn new(allowed: Vec<IpNet>) -> Self {
        Self { allowed }
    }

    /// Parses `HOOKRELAY_ALLOWED_TARGETS`: comma-separated CIDRs or single addresses.
    pub fn parse(list: &str) -> Result<Self, FieldError> {
        let mut allowed = Vec::new();
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let net = IpNet::from_str(part)
                .or_else(|_| IpAddr::from_str(part).map(IpNet::from))
                .map_err(|_| {
                    FieldError::new(
                        "HOOKRELAY_ALLOWED_TARGETS",
                        format!("{part:?} is not a CIDR such as 10.0.0.0/8 or 127.0.0.1/32"),
                    )
                })?;
            allowed.push(net);
        }
        Ok(Self { allowed })
    }

    /// The allowed networks.
    pub fn allowed(&self) -> &[IpNet] {
        &self.allowed
    }

    /// Whether a connection to `addr` is allowed.
    pub fn check(&self, addr: IpAddr) -> Result<(), TargetRefused> {
        let Some(class) = classify(addr) else {
            return Ok(());
        };
        let canonical = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        if self
            .allowed
            .iter()
            .any(|net| net.contains(&addr) || net.contains(&canonical))
        {
            return Ok(());
        }
        Err(TargetRefused { addr, class })
    }

    /// Checks a URL host when it is a literal address; hostnames are checked at connection
    /// time, on the addresses DNS returns.
    pub fn check_url(&self, url: &url::Url) -> Result<(), TargetRefused> {
        match url.host() {
            Some(url::Host::Ipv4(a)) => self.check(IpAddr::V4(a)),
            Some(url::Host::Ipv6(a)) => self.check(IpAddr::V6(a)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(policy: &TargetPolicy, addr: &str, want: Option<&str>) {
        let addr: IpAddr = addr.parse().expect("address");
        match (policy.check(addr), want) {
            (Ok(()), None) => {}
            (Err(e), Some(w)) => assert!(e.to_string().contains(w), "{addr}: {e}"),
            (got, want) => panic!("{addr}: got {got:?}, wanted {want:?}"),
        }
    }

    #[test]
    fn refuses_internal_addresses_by_default() {
        let p = TargetPolicy::default();
        check(
            &p,
            "127.0.0.1",
            Some("target 127.0.0.1 is a loopback address; allow it with HOOKRELAY_ALLOWED_TARGETS"),
        );
        check(&p, "10.1.2.3", Some("private"));
        check(&p, "172.16.0.1", Some("private"));
        check(&p, "172.31.255.255", Some("private"));
        check(&p, "192.168.1.1", Some("private"));
        check(&p, "169.254.169.254", Some("link-local"));
        check(&p, "100.64.0.1", Some("shared"));
        check(&p, "0.0.0.0", Some("unspecified"));
        check(&p, "224.0.0.1", Some("multicast"));
        check(&p, "255.255.255.255", Some("reserved"));
        check(&p, "::1", Some("loopback"));
        check(&p, "::", Some("unspecified"));
        check(&p, "fc00::1", Some("private"));
        check(&p, "fd12:3456::1", Some("private"));
        check(&p, "fe80::1", Some("link-local"));
        check(&p, "ff02::1", Some("multicast"));
        check(&p, "::ffff:127.0.0.1", Some("loopback"));
        check(&p, "::ffff:169.254.169.254", Some("link-local"));
        check(&p, "64:ff9b::7f00:1", Some("loopback"));
        check(&p, "64:ff9b::a00:1", Some("private"));
        check(&p, "2002:c0a8:101::1", Some("private"));
        check(&p, "2002:7f00:1::", Some("loopback"));
        check(&p, "64:ff9b::5db8:d822", None);
        check(&p, "192.0.0.192", Some("reserved"));
        check(&p, "198.18.0.1", Some("reserved"));
        check(&p, "198.19.255.1", Some("reserved"));
        check(&p, "203.0.113.5", Some("reserved"));
        check(&p, "fec0::1", Some("private"));
        check(&p, "2001:0:4136:e378::1", Some("reserved"));
        check(&p, "64:ff9b:1::1", Some("private"));
        check(&p, "2001:db8::1", None);
        check(&p, "198.20.0.1", None);
        check(&p, "93.184.216.34", None);
        check(&p, "172.32.0.1", None);
        check(&p, "2606:4700::1111", None);
    }

    #[test]
    fn allowed_networks_open_the_door() {
        let p = TargetPolicy::parse("127.0.0.0/8, 10.0.0.5").expect("parses");
        check(&p, "127.0.0.1", None);
        check(&p, "::ffff:127.0.0.1", None);
        check(&p, "10.0.0.5", None);
        check(&p, "10.0.0.6", Some("private"));
        check(&p, "::1", Some("loopback"));
    }

    #[test]
    fn bad_cidr_names_the_setting() {
        let e = TargetPolicy::parse("10.0.0.0/8,nope").expect_err("invalid");
        assert_eq!(e.field, "HOOKRELAY_ALLOWED_TARGETS");
        assert!(e.message.contains("nope"));
    }
}
