//! Network metrics, registered on the node's registry.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

#[derive(Clone)]
pub struct NetMetrics {
    pub peers: IntGauge,
    pub gossip_received: IntCounterVec,
    pub gossip_received_bytes: IntCounterVec,
    pub gossip_published: IntCounterVec,
    pub requests: IntCounterVec,
    pub penalties: IntCounterVec,
    pub bans: IntCounter,
    pub admissions: IntCounterVec,
    pub nat_events: IntCounterVec,
}

fn reg<C: prometheus::core::Collector + Clone + 'static>(
    r: &Registry,
    c: C,
) -> Result<C, prometheus::Error> {
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

impl NetMetrics {
    pub fn register(r: &Registry) -> Result<NetMetrics, prometheus::Error> {
        Ok(NetMetrics {
            peers: reg(
                r,
                IntGauge::new("doin_net_peers", "Peers with at least one open connection")?,
            )?,
            gossip_received: reg(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "doin_net_gossip_received_total",
                        "Gossip messages received, by topic and verdict",
                    ),
                    &["topic", "verdict"],
                )?,
            )?,
            gossip_received_bytes: reg(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "doin_net_gossip_received_bytes_total",
                        "Payload bytes of gossip messages received, by topic",
                    ),
                    &["topic"],
                )?,
            )?,
            gossip_published: reg(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "doin_net_gossip_published_total",
                        "Gossip messages this node published, by topic",
                    ),
                    &["topic"],
                )?,
            )?,
            requests: reg(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "doin_net_requests_total",
                        "Requests by service, direction (inbound, outbound) and outcome",
                    ),
                    &["service", "direction", "outcome"],
                )?,
            )?,
            penalties: reg(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "doin_net_penalties_total",
                        "Score penalties given to peers, by reason",
                    ),
                    &["reason"],
                )?,
            )?,
            bans: reg(
                r,
                IntCounter::new("doin_net_bans_total", "Peers banned for misbehaviour")?,
            )?,
            admissions: reg(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "doin_net_admissions_total",
                        "Connections by what the limits made of them: kept, newcomer (a short \
                         stay at a full node), newcomer-kept (a slot freed during the stay), \
                         newcomer-closed, evicted (an inbound peer closed to keep a newcomer), refused-inbound, \
                         refused-outbound (this node full: not even dialled), duplicate-closed (a \
                         second direct connection to a peer closed)",
                    ),
                    &["outcome"],
                )?,
            )?,
            nat_events: reg(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "doin_net_nat_events_total",
                        "NAT traversal: relay-reserved (a relay accepted this private node), \
                         relay-lost (the reservation ended), hole-punched (a relayed connection \
                         upgraded to a direct one), hole-punch-failed",
                    ),
                    &["event"],
                )?,
            )?,
        })
    }
}
