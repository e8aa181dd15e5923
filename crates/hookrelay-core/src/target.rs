//! The target policy: which IP addresses deliveries may connect to.
//!
//! Private, loopback, link-local, shared (CGNAT), unspecified, broadcast and multicast
//! addresses, and every other range of the IANA IPv4 and IPv6 special-purpose address
//! registries that is not globally reachable (documentation, benchmarking, discard-only,
//! IPv4-translated, SRv6 SIDs, …), are refused unless an operator allows them with
//! `HOOKRELAY_ALLOWED_TARGETS` — a network, or a network and one port (`127.0.0.1:9000`).
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
    /// 255.255.255.255, 240/4, and the other special-purpose ranges that are not globally
    /// reachable (documentation, benchmarking, IETF protocol assignments, discard-only,
    /// IPv4-translated, SRv6 SIDs, Teredo).
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
            AddressClass::Reserved => "a reserved (special-purpose) address",
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
        // 192.88.99.0/24 (the deprecated 6to4 relay anycast), 198.18.0.0/15
        // (benchmarking), and the three documentation networks.
        || (o[0] == 192 && o[1] == 0 && (o[2] == 0 || o[2] == 2))
        || (o[0] == 192 && o[1] == 88 && o[2] == 99)
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
    } else if s[0..4] == [0x100, 0, 0, 0] || s[0..4] == [0x100, 0, 0, 1] {
        // Discard-only (100::/64) and the dummy prefix (100:0:0:1::/64).
        Some(AddressClass::Reserved)
    } else if s[0..6] == [0, 0, 0, 0, 0xffff, 0] {
        // IPv4-translated (::ffff:0:0:0/96): a translator would connect to the embedded
        // IPv4 address on our behalf.
        Some(AddressClass::Reserved)
    } else if s[0] == 0x2001 && s[1] < 0x200 {
        // IETF protocol assignments (2001::/23), Teredo (2001::/32) among them, but for the
        // few that are globally reachable.
        (!ietf_global(s)).then_some(AddressClass::Reserved)
    } else if (s[0] == 0x2001 && s[1] == 0x0db8) || (s[0] & 0xfff0) == 0x3ff0 {
        // Documentation (2001:db8::/32, 3fff::/20).
        Some(AddressClass::Reserved)
    } else if s[0] == 0x5f00 {
        // Segment Routing (SRv6) SIDs (5f00::/16).
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

/// The globally reachable exceptions inside 2001::/23: 2001:1::1–3 (PCP and TURN anycast,
/// DNS-SD SRP), 2001:3::/32 (AMT), 2001:4:112::/48 (AS112), 2001:20::/28 (ORCHIDv2) and
/// 2001:30::/28 (drone remote ID).
fn ietf_global(s: [u16; 8]) -> bool {
    (s[1] == 1 && s[2..7] == [0, 0, 0, 0, 0] && (1..=3).contains(&s[7]))
        || s[1] == 3
        || (s[1] == 4 && s[2] == 0x112)
        || (0x20..0x40).contains(&s[1])
}

/// Which addresses deliveries may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    allowed: Vec<Allowed>,
}

/// One entry of the allow-list: a network, and optionally the one port it is allowed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowed {
    /// The network.
    pub net: IpNet,
    /// The only port allowed on it; any port when `None`.
    pub port: Option<u16>,
}

impl Allowed {
    fn admits(&self, addr: IpAddr, canonical: IpAddr, port: Option<u16>) -> bool {
        (self.net.contains(&addr) || self.net.contains(&canonical))
            && match (self.port, port) {
                (None, _) => true,
                (Some(want), Some(got)) => want == got,
                // Port unknown: only an entry for every port admits it.
                (Some(_), None) => false,
            }
    }
}

impl std::fmt::Display for Allowed {
    /// As written in `HOOKRELAY_ALLOWED_TARGETS`: `10.0.0.0/8`, `127.0.0.1/32:9000`,
    /// `[::1/128]:9000`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.port, self.net) {
            (None, net) => write!(f, "{net}"),
            (Some(port), IpNet::V4(net)) => write!(f, "{net}:{port}"),
            (Some(port), IpNet::V6(net)) => write!(f, "[{net}]:{port}"),
        }
    }
}

/// Parses one allow-list entry: `10.0.0.0/8`, `10.0.0.5`, `::1`, `127.0.0.1:9000`,
/// `127.0.0.0/8:9000`, `[::1]:9000` or `[fd00::/8]:9000`.
fn parse_allowed(part: &str) -> Option<Allowed> {
    let net = |s: &str| {
        IpNet::from_str(s)
            .ok()
            .or_else(|| IpAddr::from_str(s).ok().map(IpNet::from))
    };
    if let Some(n) = net(part) {
        return Some(Allowed { net: n, port: None });
    }
    let (host, port) = if let Some(rest) = part.strip_prefix('[') {
        let (host, port) = rest.split_once("]:")?;
        (host, port)
    } else {
        // An IPv6 network without brackets cannot carry a port: its colons are its own.
        let (host, port) = part.rsplit_once(':')?;
        if host.contains(':') {
            return None;
        }
        (host, port)
    };
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    Some(Allowed {
        net: net(host)?,
        port: Some(port),
    })
}

impl TargetPolicy {
    /// A policy that allows, beyond public addresses, the given networks on any port.
    pub fn new(allowed: Vec<IpNet>) -> Self {
        Self {
            allowed: allowed
                .into_iter()
                .map(|net| Allowed { net, port: None })
                .collect(),
        }
    }

    /// Parses `HOOKRELAY_ALLOWED_TARGETS`: comma-separated CIDRs or single addresses, each
    /// optionally with one port (`127.0.0.1:9000`, `[::1]:9000`).
    pub fn parse(list: &str) -> Result<Self, FieldError> {
        let mut allowed = Vec::new();
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let entry = parse_allowed(part).ok_or_else(|| {
                FieldError::new(
                    "HOOKRELAY_ALLOWED_TARGETS",
                    format!(
                        "{part:?} is not a CIDR such as 10.0.0.0/8 or 127.0.0.1/32, optionally with a port (127.0.0.1:9000, [::1]:9000)"
                    ),
                )
            })?;
            allowed.push(entry);
        }
        Ok(Self { allowed })
    }

    /// The allow-list.
    pub fn allowed(&self) -> &[Allowed] {
        &self.allowed
    }

    /// Whether some entry is limited to one port (then a connection's port matters).
    pub fn has_ports(&self) -> bool {
        self.allowed.iter().any(|a| a.port.is_some())
    }

    /// Whether a connection to `addr` is allowed whatever the port: a public address, or
    /// one inside an entry without a port.
    pub fn check(&self, addr: IpAddr) -> Result<(), TargetRefused> {
        self.check_port(addr, None)
    }

    /// Whether a connection to `addr` on `port` (unknown: `None`) is allowed.
    pub fn check_port(&self, addr: IpAddr, port: Option<u16>) -> Result<(), TargetRefused> {
        let Some(class) = classify(addr) else {
            return Ok(());
        };
        let canonical = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        if self.allowed.iter().any(|a| a.admits(addr, canonical, port)) {
            return Ok(());
        }
        Err(TargetRefused { addr, class })
    }

    /// Checks a URL host when it is a literal address, on the URL's port; hostnames are
    /// checked at connection time, on the addresses DNS returns.
    pub fn check_url(&self, url: &url::Url) -> Result<(), TargetRefused> {
        let port = url.port_or_known_default();
        match url.host() {
            Some(url::Host::Ipv4(a)) => self.check_port(IpAddr::V4(a), port),
            Some(url::Host::Ipv6(a)) => self.check_port(IpAddr::V6(a), port),
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
        check(&p, "2001:db8::1", Some("reserved"));
        check(&p, "::ffff:0:7f00:1", Some("reserved"));
        check(&p, "::ffff:0:808:808", Some("reserved"));
        check(&p, "100::1", Some("reserved"));
        check(&p, "100::ffff:ffff:ffff:ffff", Some("reserved"));
        check(&p, "100:0:0:1::1", Some("reserved"));
        check(&p, "2001:2::1", Some("reserved"));
        check(&p, "2001:10::1", Some("reserved"));
        check(&p, "2001:1::4", Some("reserved"));
        check(&p, "2001:1ff::1", Some("reserved"));
        check(&p, "3fff::1", Some("reserved"));
        check(&p, "3fff:fff::1", Some("reserved"));
        check(&p, "5f00::1", Some("reserved"));
        check(&p, "192.88.99.1", Some("reserved"));
        check(&p, "192.0.2.1", Some("reserved"));
        // Globally reachable, though special-purpose or close to a refused range.
        check(&p, "2001:1::1", None);
        check(&p, "2001:3::1", None);
        check(&p, "2001:4:112::1", None);
        check(&p, "2001:20::1", None);
        check(&p, "2001:200::1", None);
        check(&p, "2001:db9::1", None);
        check(&p, "100:0:0:2::1", None);
        check(&p, "4000::1", None);
        check(&p, "::ffff:8.8.8.8", None);
        check(&p, "192.88.98.1", None);
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
    fn allowed_entries_may_carry_a_port() {
        let p = TargetPolicy::parse("127.0.0.1:9000, 10.0.0.0/8:8080, [::1]:9001, [fd00::/8]:443")
            .expect("parses");
        assert!(p.has_ports());
        let ok = |a: &str, port: Option<u16>| p.check_port(a.parse().expect("addr"), port).is_ok();
        assert!(ok("127.0.0.1", Some(9000)));
        assert!(ok("::ffff:127.0.0.1", Some(9000)));
        assert!(!ok("127.0.0.1", Some(9001)));
        assert!(!ok("127.0.0.1", None));
        assert!(!ok("127.0.0.2", Some(9000)));
        assert!(ok("10.1.2.3", Some(8080)));
        assert!(!ok("10.1.2.3", Some(80)));
        assert!(ok("::1", Some(9001)));
        assert!(!ok("::1", Some(9000)));
        assert!(ok("fd12::1", Some(443)));
        assert!(ok("93.184.216.34", Some(22)));
        let url = |u: &str| p.check_url(&url::Url::parse(u).expect("url")).is_ok();
        assert!(url("http://127.0.0.1:9000/hook"));
        assert!(!url("http://127.0.0.1/hook"));
        assert!(!url("http://127.0.0.1:9001/hook"));
        assert!(url("http://[::1]:9001/"));
        assert!(url("https://[fd00::1]/"));
        assert!(!url("http://[fd00::1]/"));
        for bad in [
            "127.0.0.1:0",
            "127.0.0.1:70000",
            "[::1]9000",
            "host:80",
            "1.2.3.4:x",
        ] {
            assert!(TargetPolicy::parse(bad).is_err(), "{bad}");
        }
        // Written back, the entries read the same.
        let again: Vec<String> = p.allowed().iter().map(ToString::to_string).collect();
        assert_eq!(
            TargetPolicy::parse(&again.join(",")).expect("reads back"),
            p
        );
        // Without a port, every port, as before.
        let any = TargetPolicy::parse("127.0.0.0/8").expect("parses");
        assert!(!any.has_ports());
        assert!(
            any.check_port("127.0.0.1".parse().expect("addr"), Some(1))
                .is_ok()
        );
    }

    #[test]
    fn bad_cidr_names_the_setting() {
        let e = TargetPolicy::parse("10.0.0.0/8,nope").expect_err("invalid");
        assert_eq!(e.field, "HOOKRELAY_ALLOWED_TARGETS");
        assert!(e.message.contains("nope"));
    }
}
