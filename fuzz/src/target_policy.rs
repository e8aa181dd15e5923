//! `target_policy`: parsing any `HOOKRELAY_ALLOWED_TARGETS` value and checking any address
//! or URL against a policy never panics; a parsed policy reads back the same from its own
//! networks; an address inside an allowed network, or a public one, is always allowed; an
//! IPv4 address and its IPv4-mapped IPv6 form get the same verdict.
//!
//! Input: seventeen header bytes, then fields separated by `0xFF`:
//!
//! | header bytes | meaning |
//! | --- | --- |
//! | 0 | bit 0: the address is the raw bytes 1–16 rather than the address field's text; bit 1: those bytes give IPv4 (bytes 1–4) rather than IPv6 |
//! | 1–16 | the raw address (in the header so that it may hold `0xFF`, as `::ffff:…` and `255.…` do) |
//!
//! Fields, in order: the policy text, the address as text, and a URL whose host is checked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hookrelay_core::target::{TargetPolicy, classify};
use ipnet::IpNet;

use crate::input::Input;

/// Checks one fuzz input.
pub fn check(data: &[u8]) {
    let mut input = Input::<17>::new(data);
    let raw = input
        .flag(0, 0)
        .then(|| raw_address(&input.header, input.flag(0, 1)));
    let list = input.text();
    let address = input.text();
    let url = input.text();

    let policy = match TargetPolicy::parse(&list) {
        Ok(policy) => policy,
        Err(e) => {
            assert_eq!(
                e.field, "HOOKRELAY_ALLOWED_TARGETS",
                "error names another field"
            );
            TargetPolicy::default()
        }
    };
    let again: Vec<String> = policy.allowed().iter().map(ToString::to_string).collect();
    match TargetPolicy::parse(&again.join(",")) {
        Ok(back) => assert_eq!(back, policy, "policy does not read back from {again:?}"),
        Err(e) => panic!("policy {again:?} does not parse again: {e}"),
    }

    let addr = raw.or_else(|| address.trim().parse::<IpAddr>().ok());
    if let Some(addr) = addr {
        for policy in [&policy, &TargetPolicy::default()] {
            let verdict = policy.check(addr);
            if let Err(refused) = &verdict {
                // The refusal is shown to API users; formatting it must not panic.
                let _ = refused.to_string();
            }
            if classify(addr).is_none() {
                assert!(verdict.is_ok(), "public address {addr} refused");
            }
            // Only entries without a port allow an address whatever the port.
            if policy
                .allowed()
                .iter()
                .any(|a| a.port.is_none() && a.net.contains(&addr))
            {
                assert!(
                    verdict.is_ok(),
                    "{addr} refused though allowed by {policy:?}"
                );
            }
            // An IPv4 address written as IPv4-mapped IPv6 (`::ffff:a.b.c.d`) reaches the same
            // host, so it gets the same verdict; otherwise the mapped form would get round
            // the policy. Only for policies of IPv4 networks: an IPv6 network that lists the
            // mapped form allows the mapped form alone, which refuses more, not less.
            if let IpAddr::V4(v4) = addr
                && policy
                    .allowed()
                    .iter()
                    .all(|a| matches!(a.net, IpNet::V4(_)))
            {
                let mapped = IpAddr::V6(v4.to_ipv6_mapped());
                assert_eq!(
                    policy.check(mapped).is_ok(),
                    verdict.is_ok(),
                    "{addr} and {mapped} get different verdicts under {policy:?}"
                );
            }
        }
    }

    if let Ok(url) = url::Url::parse(&url) {
        let _ = policy.check_url(&url);
    }
}

/// The raw address in header bytes 1–16: IPv4 from the first four, or IPv6 from all 16.
fn raw_address(header: &[u8; 17], v4: bool) -> IpAddr {
    let mut v6 = [0u8; 16];
    v6.copy_from_slice(&header[1..]);
    if v4 {
        IpAddr::V4(Ipv4Addr::new(v6[0], v6[1], v6[2], v6[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(v6))
    }
}
