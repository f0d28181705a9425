//! An in-process hub on a real transfer chain (RocksDB, signed transactions, blocks made on
//! demand), with a payer and a payee each driving their own channel machine: what the hub
//! tests share.
//!
//! Test code: a failed step panics, which fails the test that called it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use doin_channels::{ChannelMachine, Message};
use doin_crypto::KeyPair;
use doin_hub::{Hub, HubConfig, HubStore, ProposalContext};
use doin_store::{KvStore, RocksConfig, RocksStore};
use doin_tx_core::channel::{channel_id, ChannelId, Side};
use doin_tx_core::{ConsensusParams, GenesisSpec, Tx, TxBody, TxPayload};
use doin_tx_node::TxChain;
use doin_types::{Amount, Timestamp};
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Milli-units per base unit.
pub const UNIT: u64 = 1_000;

/// A one-validator transfer chain whose blocks the test makes.
pub struct Net {
    pub chain: Arc<TxChain>,
    pub validator: KeyPair,
    pub spec: GenesisSpec,
}

impl Net {
    pub fn block(&self) {
        self.chain
            .produce_block(&self.validator, Timestamp(doin_tx_node::now_ms()))
            .unwrap();
    }

    pub fn height(&self) -> u64 {
        self.chain.tip().final_height
    }

    pub fn send(&self, from: &KeyPair, payload: TxPayload) {
        let (nonce, _) = self.chain.next_nonce(&from.public()).unwrap();
        let body = TxBody {
            chain_id: self.chain.params().chain_id,
            sender: from.public(),
            nonce,
            max_fee_per_weight: Amount::from_base_units(40),
            max_priority_fee_per_weight: Amount::from_base_units(1),
            payload,
        };
        let tx = Tx::from_signed(body.sign(from).unwrap()).unwrap();
        self.chain.submit(tx.bytes()).unwrap();
    }

    pub fn balance(&self, k: &KeyPair) -> u64 {
        self.chain
            .account(&k.public())
            .unwrap()
            .balance
            .base_units()
    }

    /// Fees `k` paid in the final blocks `from..=to` (base units).
    pub fn fees_paid(&self, k: &KeyPair, from: u64, to: u64) -> u64 {
        let mut total = 0;
        for height in from..=to {
            let block = self.chain.store().block(height).unwrap().unwrap();
            for signed in block.txs {
                if signed.body.sender != k.public() {
                    continue;
                }
                let tx = Tx::from_signed(signed).unwrap();
                let split = doin_tx_core::fees::fee_split(
                    tx.body().max_fee_per_weight,
                    tx.body().max_priority_fee_per_weight,
                    block.header.base_fee,
                    tx.weight(),
                )
                .unwrap();
                total += split.total().unwrap().base_units();
            }
        }
        total
    }

    /// Balances + stakes + channel deposits = circulating supply.
    pub fn assert_supply(&self) {
        let stats = self.chain.chain_stats().unwrap();
        let balances: u64 = self.balance(&self.validator)
            + self
                .spec
                .allocations
                .iter()
                .map(|a| self.chain.account(&a.key).unwrap().balance.base_units())
                .sum::<u64>();
        assert_eq!(
            balances + stats.staked.base_units() + stats.in_channels.base_units(),
            stats.circulating().unwrap().base_units()
        );
    }
}

/// A payer's or payee's side of one channel.
pub struct Peer {
    pub key: KeyPair,
    pub m: ChannelMachine,
}

impl Peer {
    /// Proposes paying `amount_msat` at height `h`: the proposal to send.
    pub fn pay(&mut self, amount_msat: u64, h: u64) -> Message {
        self.m
            .propose(doin_channels::Change::Pay { amount_msat }, h)
            .unwrap()
            .send
            .unwrap()
    }
}

/// The context of a tick into `stream`.
pub fn tick_context(stream: doin_types::Hash256) -> ProposalContext {
    ProposalContext {
        stream: Some(stream),
        invoice: None,
        vote: None,
        split: Vec::new(),
        fund: None,
    }
}

/// The context of an HTLC through the hub for `invoice`.
pub fn htlc_context(invoice: String) -> ProposalContext {
    ProposalContext {
        stream: None,
        invoice: Some(invoice),
        vote: None,
        split: Vec::new(),
        fund: None,
    }
}

pub fn copy_key(k: &KeyPair) -> KeyPair {
    KeyPair::from_secret_bytes(&k.secret_bytes()).unwrap()
}

/// Opens (or reopens) the hub whose store lives in `dir/hub`.
pub fn open_hub(dir: &Path, key: &KeyPair, net: &Net, cfg: HubConfig) -> Hub {
    let kv: Arc<dyn KvStore> = Arc::new(
        RocksStore::open(&dir.join("hub"), doin_hub::COLUMNS, &RocksConfig::default()).unwrap(),
    );
    let port = Arc::new(doin_node::hub_port::TxChainPort::new(&net.chain));
    Hub::open(
        copy_key(key),
        port,
        HubStore::new(kv, doin_hub::HubMetrics::unregistered().unwrap()),
        cfg,
    )
    .unwrap()
}

/// `peer` sends `first` to the hub and the two answer each other until done.
pub fn exchange(
    hub: &Hub,
    peer: &mut Peer,
    id: &ChannelId,
    first: Message,
    ctx: ProposalContext,
    h: u64,
) {
    let mut next = Some(first);
    let mut ctx = Some(ctx);
    while let Some(msg) = next.take() {
        let handled = hub.handle(id, msg, ctx.take().unwrap_or_default()).unwrap();
        let Some(reply) = handled.reply else { break };
        let out = peer.m.handle(&peer.key, reply, h).unwrap();
        next = out.send;
    }
}

/// The hub's pending proposal on `id`, accepted by `peer`.
pub fn pull(hub: &Hub, peer: &mut Peer, id: &ChannelId, h: u64) -> bool {
    let Some(proposal) = hub.outbox(id).unwrap() else {
        return false;
    };
    let out = peer.m.handle(&peer.key, proposal, h).unwrap();
    exchange(
        hub,
        peer,
        id,
        out.send.unwrap(),
        ProposalContext::default(),
        h,
    );
    true
}

/// A devnet invoice of `payee` for `amount_msat` locked to `preimage`'s hash (valid an hour,
/// two final blocks).
pub fn payee_invoice(
    payee: &KeyPair,
    amount_msat: u64,
    preimage: [u8; 32],
    description: &str,
) -> String {
    doin_channels::create_invoice(
        doin_types::Network::Devnet,
        payee,
        &doin_channels::InvoiceTerms {
            amount_msat,
            payment_hash: doin_types::Hash256(doin_tx_core::channel::sha256(&preimage)),
            payment_secret: doin_tx_core::channel::sha256(&[&preimage[..], b"secret"].concat()),
            description: description.into(),
            expiry_secs: 3_600,
            min_final_cltv_blocks: 2,
        },
        unix_now(),
    )
    .unwrap()
}

pub fn unix_now() -> std::time::Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
}

/// A chain, a hub with a channel to a payee and a payer with a channel to the hub, both
/// confirmed and registered.
pub struct HubWorld {
    pub net: Net,
    pub hub: Hub,
    pub hub_key: KeyPair,
    pub payer: Peer,
    pub payee: Peer,
    /// The payer's channel to the hub.
    pub in_id: ChannelId,
    /// The hub's channel to the payee.
    pub out_id: ChannelId,
}

impl HubWorld {
    /// Every party starts with 10 000 000 units; the hub puts `hub_deposit` units into its
    /// channel to the payee, the payer `payer_deposit` into its channel to the hub (with the
    /// dispute window of `cfg`).
    pub fn new(dir: &Path, cfg: HubConfig, payer_deposit: u64, hub_deposit: u64) -> HubWorld {
        let (validator, hub_key, payer_key, payee_key) = (
            KeyPair::generate(),
            KeyPair::generate(),
            KeyPair::generate(),
            KeyPair::generate(),
        );
        let spec = crate::funded_genesis(
            "hub",
            &validator,
            &[&hub_key, &payer_key, &payee_key],
            10_000_000,
            ConsensusParams::public_defaults(),
        );
        let chain = crate::open_rocks_chain(dir, spec.clone()).unwrap();
        let net = Net {
            chain,
            validator,
            spec,
        };
        let dispute_blocks = cfg.dispute_blocks;
        let hub = open_hub(dir, &hub_key, &net, cfg);
        let chain_id = net.chain.params().chain_id;
        let out_id = hub
            .open_outgoing(payee_key.public(), Amount::from_base_units(hub_deposit))
            .unwrap();
        let payer_nonce = net.chain.next_nonce(&payer_key.public()).unwrap().0;
        net.send(
            &payer_key,
            TxPayload::ChannelOpen {
                counterparty: hub_key.public(),
                deposit: Amount::from_base_units(payer_deposit),
                counterparty_deposit: Amount::ZERO,
                dispute_blocks,
                consent: None,
            },
        );
        let in_id = channel_id(&chain_id, &payer_key.public(), payer_nonce);
        net.block();
        let report = hub.watch().unwrap();
        assert_eq!(report.confirmed, vec![out_id]);
        hub.register_incoming(in_id).unwrap();
        net.assert_supply();
        let payer = Peer {
            m: ChannelMachine::new(
                chain_id,
                in_id,
                Side::A,
                payer_key.public(),
                hub_key.public(),
                payer_deposit * UNIT,
                0,
            )
            .unwrap(),
            key: payer_key,
        };
        let payee = Peer {
            m: ChannelMachine::new(
                chain_id,
                out_id,
                Side::B,
                hub_key.public(),
                payee_key.public(),
                hub_deposit * UNIT,
                0,
            )
            .unwrap(),
            key: payee_key,
        };
        HubWorld {
            net,
            hub,
            hub_key,
            payer,
            payee,
            in_id,
            out_id,
        }
    }
}
