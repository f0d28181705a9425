//! What a testnet tells its nodes about each other, as a public network would: the network's
//! file beside the genesis file (`network.toml`, every node others may be told of as a
//! bootstrap peer) and, when a node has DNS seeds, a DNS server answering them.

use super::host::Hosts;
use super::node::Node;
use super::scenario::{DNS_SEED_A, DNS_SEED_TXT};
use std::path::Path;

/// Writes the network's file beside `genesis` and, if any node has DNS seeds, starts the DNS
/// server (its log in `out`) and points those nodes' resolvers at it.
pub fn publish(hosts: &Hosts, nodes: &[Node], genesis: &Path, out: &Path) -> Result<(), String> {
    // The nodes anyone may be told of (not behind a NAT, not hidden), listed in the
    // network's file beside its genesis: every node joins from the network's files alone.
    let listed: Vec<&Node> = nodes
        .iter()
        .filter(|n| !n.spec.nat && n.spec.bootstrap)
        .collect();
    let network_file = doin_node::network_file::path_beside(genesis);
    let entries: Vec<String> = listed
        .iter()
        .map(|n| format!("  {:?},\n", n.p2p_addr()))
        .collect();
    std::fs::write(
        &network_file,
        format!(
            "# The testnet's entry points, as a network ships them.\nbootstrap = [\n{}]\n",
            entries.concat()
        ),
    )
    .map_err(|e| format!("{}: {e}", network_file.display()))?;
    if nodes.iter().any(|n| !n.spec.dns_seeds.is_empty()) {
        let a: Vec<(String, std::net::Ipv4Addr)> = listed
            .iter()
            .map(|n| (DNS_SEED_A.to_string(), n.host.ip))
            .collect();
        let txt: Vec<(String, String)> = listed
            .iter()
            .map(|n| {
                (
                    format!("_dnsaddr.{DNS_SEED_TXT}"),
                    format!("dnsaddr={}", n.p2p_addr()),
                )
            })
            .collect();
        let server = hosts.dns_server(&a, &txt, &out.join("dns.log"))?;
        for n in nodes.iter().filter(|n| !n.spec.dns_seeds.is_empty()) {
            hosts.use_dns(&n.host, server)?;
        }
    }
    Ok(())
}
