//! DNS seeds: domain names whose records list peers a node with nobody to ask can start from.
//!
//! For a seed `seed.example.org` the node asks for two kinds of records:
//! - TXT records at `_dnsaddr.seed.example.org` of the form `dnsaddr=<multiaddress>` (libp2p's
//!   convention), each a full address ending in `/p2p/<peer id>`;
//! - A and AAAA records of `seed.example.org` itself, each a peer listening on the default port
//!   [`DEFAULT_PORT`] (TCP), whose peer id the handshake reveals.
//!
//! An IP that a TXT record already names is not dialled a second time from an A record. Each
//! node orders what a seed gives by a hash keyed with its own peer id, so different nodes start
//! from different peers of one seed. At most 64 addresses are taken from a seed.
//!
//! The parsing and ordering are pure; `resolve` does the lookups with the system's resolver
//! configuration (`/etc/resolv.conf`).

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

/// The port A and AAAA records of a seed stand for.
pub const DEFAULT_PORT: u16 = 8646;
/// Addresses taken from one seed at most.
pub(crate) const MAX_PER_SEED: usize = 64;
/// A node still short of peers asks its seeds again after this long.
pub(crate) const SEED_INTERVAL: Duration = Duration::from_secs(60);
/// One seed's lookups give up after this long.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Seeds a node may be given at most.
pub const MAX_SEEDS: usize = 16;

/// Whether `name` can be a DNS seed: a domain name of letters, digits and hyphens in dot-
/// separated labels of 1 to 63 characters, at most 253 in all, not an IP address.
pub fn check_seed_name(name: &str) -> Result<(), String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(format!("{name:?} is not a domain name"));
    }
    if name.parse::<IpAddr>().is_ok()
        || name
            .split('.')
            .all(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!(
            "{name:?} is an IP address: a bootstrap peer, not a DNS seed"
        ));
    }
    Ok(())
}

/// The multiaddress of a `dnsaddr=` TXT record: an IP or DNS address ending in the peer's id.
pub(crate) fn parse_dnsaddr(txt: &[u8]) -> Option<Multiaddr> {
    let text = std::str::from_utf8(txt).ok()?;
    let addr: Multiaddr = text.strip_prefix("dnsaddr=")?.trim().parse().ok()?;
    let mut parts = addr.iter();
    let direct = matches!(
        parts.next(),
        Some(Protocol::Ip4(_) | Protocol::Ip6(_) | Protocol::Dns(_))
            | Some(Protocol::Dns4(_) | Protocol::Dns6(_))
    );
    let ends_in_peer = matches!(addr.iter().last(), Some(Protocol::P2p(_)));
    (direct && ends_in_peer).then_some(addr)
}

/// The address an A or AAAA record stands for.
pub(crate) fn from_ip(ip: IpAddr) -> Multiaddr {
    let first = match ip {
        IpAddr::V4(v4) => Protocol::Ip4(v4),
        IpAddr::V6(v6) => Protocol::Ip6(v6),
    };
    Multiaddr::empty()
        .with(first)
        .with(Protocol::Tcp(DEFAULT_PORT))
}

fn ip_in(addr: &Multiaddr) -> Option<IpAddr> {
    match addr.iter().next()? {
        Protocol::Ip4(v4) => Some(IpAddr::V4(v4)),
        Protocol::Ip6(v6) => Some(IpAddr::V6(v6)),
        _ => None,
    }
}

/// What one seed gave, as addresses to dial: the TXT addresses, then the A/AAAA addresses of
/// IPs no TXT address names; without repeats, in this node's own order, at most
/// [`MAX_PER_SEED`].
pub(crate) fn merge(local: &PeerId, dnsaddrs: Vec<Multiaddr>, ips: Vec<IpAddr>) -> Vec<Multiaddr> {
    let named: BTreeSet<IpAddr> = dnsaddrs.iter().filter_map(ip_in).collect();
    let mut seen = BTreeSet::new();
    let mut out: Vec<Multiaddr> = dnsaddrs
        .into_iter()
        .chain(
            ips.into_iter()
                .filter(|ip| !named.contains(ip))
                .map(from_ip),
        )
        .filter(|a| seen.insert(a.to_vec()))
        .collect();
    let key = local.to_bytes();
    out.sort_by_cached_key(|a| {
        doin_crypto::tagged_hash_parts("DOIN/net/seed-order", &[&key, &a.to_vec()]).0
    });
    out.truncate(MAX_PER_SEED);
    out
}

/// Looks up every seed (each bounded by a timeout); per seed the addresses or why none.
pub(crate) async fn resolve(
    seeds: Vec<String>,
    local: PeerId,
) -> Vec<(String, Result<Vec<Multiaddr>, String>)> {
    let resolver = match hickory_resolver::TokioResolver::builder_tokio() {
        Ok(builder) => builder.build(),
        Err(e) => {
            let why = format!("no resolver configuration: {e}");
            return seeds.into_iter().map(|s| (s, Err(why.clone()))).collect();
        }
    };
    let mut out = Vec::with_capacity(seeds.len());
    for seed in seeds {
        let lookups = async {
            let txt = resolver.txt_lookup(format!("_dnsaddr.{seed}.")).await;
            let ips = resolver.lookup_ip(format!("{seed}.")).await;
            (txt, ips)
        };
        let answer = match tokio::time::timeout(LOOKUP_TIMEOUT, lookups).await {
            Err(_) => Err(format!("no answer within {} s", LOOKUP_TIMEOUT.as_secs())),
            Ok((txt, ips)) => {
                let dnsaddrs: Vec<Multiaddr> = txt
                    .map(|l| {
                        l.iter()
                            .filter_map(|r| parse_dnsaddr(&r.txt_data().concat()))
                            .collect()
                    })
                    .unwrap_or_default();
                let ips: Vec<IpAddr> = ips.map(|l| l.iter().collect()).unwrap_or_default();
                let found = merge(&local, dnsaddrs, ips);
                if found.is_empty() {
                    Err("no dnsaddr TXT record and no A or AAAA record".to_string())
                } else {
                    Ok(found)
                }
            }
        };
        out.push((seed, answer));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_names_are_domain_names() {
        for good in ["seed.example.org", "a-1.seed.test.", "localhost"] {
            assert_eq!(check_seed_name(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "203.0.113.7",
            "-a.example.org",
            "a..b",
            "seed.example.org/8646",
            "sée.example",
            &"a".repeat(64),
        ] {
            assert!(check_seed_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dnsaddr_records_must_be_full_addresses_of_a_peer() {
        let peer = PeerId::random();
        let good = format!("dnsaddr=/ip4/203.0.113.7/tcp/8646/p2p/{peer}");
        assert_eq!(
            parse_dnsaddr(good.as_bytes()).map(|a| a.to_string()),
            Some(format!("/ip4/203.0.113.7/tcp/8646/p2p/{peer}"))
        );
        let dns = format!("dnsaddr=/dns4/n1.example.org/udp/8646/quic-v1/p2p/{peer}");
        assert!(parse_dnsaddr(dns.as_bytes()).is_some());
        for bad in [
            "dnsaddr=/ip4/203.0.113.7/tcp/8646".to_string(), // no peer id
            format!("/ip4/203.0.113.7/tcp/8646/p2p/{peer}"), // no prefix
            format!("dnsaddr=/p2p/{peer}"),                  // nowhere to dial
            "dnsaddr=not an address".to_string(),
            "v=spf1 -all".to_string(),
        ] {
            assert_eq!(parse_dnsaddr(bad.as_bytes()), None, "{bad}");
        }
        assert_eq!(parse_dnsaddr(&[0xff, 0xfe]), None);
    }

    #[test]
    fn a_records_fill_in_what_txt_records_do_not_name_in_the_nodes_own_order() {
        let peer = PeerId::random();
        let named: Multiaddr = format!("/ip4/203.0.113.7/tcp/9000/p2p/{peer}")
            .parse()
            .unwrap();
        let ips: Vec<IpAddr> = ["203.0.113.7", "203.0.113.8", "2001:db8::1", "203.0.113.8"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let a = merge(&PeerId::random(), vec![named.clone()], ips.clone());
        let mut got: Vec<String> = a.iter().map(|m| m.to_string()).collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                "/ip4/203.0.113.7/tcp/9000/p2p/".to_string() + &peer.to_string(),
                "/ip4/203.0.113.8/tcp/8646".to_string(),
                "/ip6/2001:db8::1/tcp/8646".to_string(),
            ]
        );
        // Bounded, and ordered per node.
        let many: Vec<IpAddr> = (0..200u8)
            .map(|i| IpAddr::from([198, 51, 100, i]))
            .collect();
        let x = merge(&PeerId::random(), Vec::new(), many.clone());
        let y = merge(&PeerId::random(), Vec::new(), many);
        assert_eq!(x.len(), MAX_PER_SEED);
        assert_ne!(x, y, "two nodes start from different peers of one seed");
    }
}
