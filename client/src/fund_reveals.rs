//! `doin hub fund-reveals`: a payer's daemon that pays evaluators without anyone acting by
//! hand. For every optimae a main block reveals in the chosen domains it puts the domain's
//! verification fee for each evaluator of the optimae's quorum (at most `max_per_optimae`)
//! into the optimae's verification fund at the hub; the hub pays the agreeing evaluators once
//! the decision is final and gives the rest back. When a funded optimae's round 1 disagrees
//! and it goes to a second, larger quorum, the daemon adds that quorum's fees to the fund, so
//! the votes of both rounds are paid (an evaluator that votes in both is paid twice). Budgets
//! per optimae (each round), per domain and day and per day (UTC days) bound what it spends.
//!
//! Persist before acting: the budget spent and the optimae funded are written (fsynced) before
//! the funding tick leaves, and every pass first finishes an update an interrupted run left
//! half-way (`sync`, which sends the kept proposal again with the optimae it funds), so a fund
//! is made once even across a crash; only a fund the hub refused gives its budget back.

use crate::hub_common::print;
use crate::hub_peer::{write_durably, HubPeer, MessageContext};
use crate::wallet::WalletOpts;
use anyhow::{anyhow, Context};
use doin_api::mainchain::{DomainView, MainBlockView, MainInfo, OptimaeView};
use doin_channels::Change;
use doin_tx_core::channel::{ChannelId, MSAT_PER_UNIT};
use doin_types::Hash256;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What the daemon may spend, milli-units.
#[derive(Clone, Debug)]
pub(crate) struct Budget {
    pub per_optimae: u64,
    /// Per domain and UTC day (none: only the daily total bounds a domain).
    pub per_domain_day: Option<u64>,
    pub per_day: u64,
}

/// What the daemon is told.
pub(crate) struct FundPlan {
    pub channel: ChannelId,
    /// Domains whose optimae it funds (empty: every domain).
    pub domains: BTreeSet<String>,
    pub budget: Budget,
    /// First main height to read on a first run (default: the tip then).
    pub from_height: Option<u64>,
    pub interval: Duration,
    pub once: bool,
}

/// The daemon's durable state (`fund-reveals.json` in the state directory).
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
struct Ledger {
    /// The next main height to read.
    next_height: u64,
    /// The UTC day (days since 1970) the amounts below are for.
    day: u64,
    spent_msat: u64,
    spent_by_domain_msat: BTreeMap<String, u64>,
    /// Optimae already funded (or being funded), newest last; the oldest are forgotten.
    funded: VecDeque<String>,
    /// Optimae whose round 2 was funded as well (absent from a file of an earlier build).
    #[serde(default)]
    funded_round2: VecDeque<String>,
}

/// How many funded optimae the ledger remembers (far more than one day's reveals).
const REMEMBERED: usize = 10_000;
/// Main blocks read per pass at most (a long pause is caught up over several passes).
const BLOCKS_PER_PASS: u64 = 20;

impl Ledger {
    fn roll_day(&mut self, day: u64) {
        if self.day != day {
            self.day = day;
            self.spent_msat = 0;
            self.spent_by_domain_msat.clear();
        }
    }

    /// What may be spent on one optimae of `domain` wanting `wanted`: `None` when a budget is
    /// used up.
    fn allowance(&self, budget: &Budget, domain: &str, wanted: u64) -> Option<u64> {
        let mut amount = wanted.min(budget.per_optimae);
        amount = amount.min(budget.per_day.checked_sub(self.spent_msat)?);
        if let Some(cap) = budget.per_domain_day {
            let spent = self.spent_by_domain_msat.get(domain).copied().unwrap_or(0);
            amount = amount.min(cap.checked_sub(spent)?);
        }
        (amount > 0).then_some(amount)
    }

    fn spend(&mut self, domain: &str, amount: u64) -> anyhow::Result<()> {
        self.spent_msat = self
            .spent_msat
            .checked_add(amount)
            .ok_or_else(|| anyhow!("the day's spending overflows"))?;
        let d = self
            .spent_by_domain_msat
            .entry(domain.to_string())
            .or_default();
        *d = d
            .checked_add(amount)
            .ok_or_else(|| anyhow!("a domain's spending overflows"))?;
        Ok(())
    }

    fn refund(&mut self, domain: &str, amount: u64) {
        self.spent_msat = self.spent_msat.saturating_sub(amount);
        if let Some(d) = self.spent_by_domain_msat.get_mut(domain) {
            *d = d.saturating_sub(amount);
        }
    }

    fn remember(&mut self, optimae: &str, round: u8) {
        let list = if round == 2 {
            &mut self.funded_round2
        } else {
            &mut self.funded
        };
        list.push_back(optimae.to_string());
        while list.len() > REMEMBERED {
            list.pop_front();
        }
    }

    fn funded(&self, optimae: &str, round: u8) -> bool {
        let list = if round == 2 {
            &self.funded_round2
        } else {
            &self.funded
        };
        list.iter().any(|o| o == optimae)
    }
}

fn today() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
        / 86_400
}

fn ledger_path(peer: &HubPeer) -> PathBuf {
    peer.state_dir.join("fund-reveals.json")
}

fn load(peer: &HubPeer) -> anyhow::Result<Option<Ledger>> {
    let path = ledger_path(peer);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
            format!("{} is not this command's state", path.display())
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn save(peer: &HubPeer, ledger: &Ledger) -> anyhow::Result<()> {
    write_durably(&ledger_path(peer), &serde_json::to_vec_pretty(ledger)?)
}

/// The daemon: every interval, reads the main blocks since the last pass and funds their
/// reveals within the budgets.
pub(crate) async fn fund_reveals(
    opts: &WalletOpts,
    peer: &HubPeer,
    plan: FundPlan,
) -> anyhow::Result<()> {
    let mut ledger = match load(peer)? {
        Some(l) => l,
        None => {
            let tip = peer.client.get::<MainInfo>("/v1/main/info").await?.height;
            let l = Ledger {
                next_height: plan.from_height.unwrap_or(tip.saturating_add(1)),
                day: today(),
                ..Ledger::default()
            };
            save(peer, &l)?;
            l
        }
    };
    loop {
        if let Err(e) = pass(opts, peer, &plan, &mut ledger).await {
            // A node or hub that cannot answer now: the next pass goes on from the ledger.
            report(opts, "error", None, 0, &e.to_string());
        }
        if plan.once {
            return Ok(());
        }
        tokio::time::sleep(plan.interval).await;
    }
}

async fn pass(
    opts: &WalletOpts,
    peer: &HubPeer,
    plan: &FundPlan,
    ledger: &mut Ledger,
) -> anyhow::Result<()> {
    let client = &peer.client;
    let height = client.info().await?.height;
    let mut m = peer.machine(&plan.channel).await?;
    // An interrupted funding tick is finished first (and what the hub gives back is taken).
    peer.sync(&mut m, height).await?;
    let tip = client.get::<MainInfo>("/v1/main/info").await?.height;
    let last = tip.min(ledger.next_height.saturating_add(BLOCKS_PER_PASS - 1));
    for h in ledger.next_height..=last {
        let block: MainBlockView = client.get(&format!("/v1/main/blocks/{h}")).await?;
        for optimae in &block.reveals {
            if ledger.funded(optimae, 1) {
                continue;
            }
            fund_one(opts, peer, plan, ledger, &mut m, optimae, 1, height).await?;
        }
        // A round-1 verdict of an optimae it funded: if it went to round 2, that round's
        // quorum is paid for too.
        for verdict in block.verdicts.iter().filter(|v| v.round == 1) {
            let optimae = &verdict.optimae_id;
            if ledger.funded(optimae, 1) && !ledger.funded(optimae, 2) {
                fund_one(opts, peer, plan, ledger, &mut m, optimae, 2, height).await?;
            }
        }
        ledger.next_height = h.saturating_add(1);
        save(peer, ledger)?;
    }
    Ok(())
}

/// Funds `round` of one revealed optimae (round 1 at its reveal, round 2 once it went there)
/// if its domain is chosen, it is still undecided in that round and a budget is left.
#[allow(clippy::too_many_arguments)]
async fn fund_one(
    opts: &WalletOpts,
    peer: &HubPeer,
    plan: &FundPlan,
    ledger: &mut Ledger,
    m: &mut doin_channels::ChannelMachine,
    optimae: &str,
    round: u8,
    height: u64,
) -> anyhow::Result<()> {
    let client = &peer.client;
    let o: OptimaeView = client.get(&format!("/v1/main/optimae/{optimae}")).await?;
    if !plan.domains.is_empty() && !plan.domains.contains(&o.domain) {
        return Ok(());
    }
    if round == 2 && o.round != 2 {
        // Round 1 ended with a decision: there is no round 2 to pay for.
        return Ok(());
    }
    if o.decided_at.is_some() {
        report(
            opts,
            "skipped",
            Some(optimae),
            0,
            "decided before it was read",
        );
        return Ok(());
    }
    let domain: DomainView = client
        .get(&format!("/v1/main/domains/{}", o.domain))
        .await?;
    let evaluators = o
        .quorum
        .as_ref()
        .map_or(domain.eligible_evaluators, Vec::len) as u64;
    let wanted = domain
        .verification_fee
        .base_units()
        .checked_mul(MSAT_PER_UNIT)
        .and_then(|fee| fee.checked_mul(evaluators))
        .ok_or_else(|| anyhow!("the domain's fees overflow"))?;
    ledger.roll_day(today());
    let Some(amount) = ledger.allowance(&plan.budget, &o.domain, wanted) else {
        if wanted > 0 {
            report(opts, "over-budget", Some(optimae), wanted, &o.domain);
        }
        ledger.remember(optimae, round);
        return save(peer, ledger);
    };
    // Written before the tick leaves: never funded twice, never over budget.
    ledger.spend(&o.domain, amount)?;
    ledger.remember(optimae, round);
    save(peer, ledger)?;
    let id = Hash256::from_hex(optimae).map_err(|e| anyhow!("optimae id: {e}"))?;
    let done = peer
        .propose(
            m,
            Change::Pay {
                amount_msat: amount,
            },
            MessageContext {
                fund_optimae: Some(&id),
                ..MessageContext::default()
            },
            height,
        )
        .await?;
    match done.rejected {
        None => report(opts, "funded", Some(optimae), amount, &o.domain),
        Some(reason) => {
            ledger.refund(&o.domain, amount);
            save(peer, ledger)?;
            report(opts, "refused", Some(optimae), amount, &reason);
        }
    }
    Ok(())
}

fn report(opts: &WalletOpts, what: &str, optimae: Option<&str>, msat: u64, detail: &str) {
    let v = json!({"action": what, "optimae": optimae, "amount_msat": msat.to_string(), "detail": detail});
    print(opts, &v, |_| match optimae {
        Some(o) => println!("{what} {o}: {msat} msat ({detail})"),
        None => println!("{what}: {detail}"),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget() -> Budget {
        Budget {
            per_optimae: 100,
            per_domain_day: Some(150),
            per_day: 200,
        }
    }

    #[test]
    fn budgets_cap_each_optimae_each_domain_and_each_day() {
        let mut l = Ledger::default();
        let b = budget();
        assert_eq!(l.allowance(&b, "a", 500), Some(100));
        assert_eq!(l.allowance(&b, "a", 30), Some(30));
        assert_eq!(l.allowance(&b, "a", 0), None);
        assert!(l.spend("a", 100).is_ok());
        // 50 left for domain a today, 100 in all.
        assert_eq!(l.allowance(&b, "a", 500), Some(50));
        assert!(l.spend("a", 50).is_ok());
        assert_eq!(l.allowance(&b, "a", 500), None);
        assert_eq!(l.allowance(&b, "b", 500), Some(50));
        assert!(l.spend("b", 50).is_ok());
        assert_eq!(l.allowance(&b, "c", 500), None);
        // A refused fund gives its budget back; a new day starts afresh.
        l.refund("b", 50);
        assert_eq!(l.allowance(&b, "c", 500), Some(50));
        l.roll_day(l.day + 1);
        assert_eq!(l.allowance(&b, "a", 500), Some(100));
    }

    #[test]
    fn the_ledger_remembers_a_bounded_number_of_optimae() {
        let mut l = Ledger::default();
        for i in 0..REMEMBERED + 5 {
            l.remember(&i.to_string(), 1);
        }
        assert_eq!(l.funded.len(), REMEMBERED);
        assert!(!l.funded("0", 1));
        assert!(l.funded(&(REMEMBERED + 4).to_string(), 1));
        // Round 2 is remembered apart.
        assert!(!l.funded("7", 2));
        l.remember("7", 2);
        assert!(l.funded("7", 2) && l.funded_round2.len() == 1);
    }

    #[test]
    fn a_ledger_of_an_earlier_build_is_read() {
        let old =
            r#"{"next_height":5,"day":1,"spent_msat":0,"spent_by_domain_msat":{},"funded":["ab"]}"#;
        let l: Ledger = serde_json::from_str(old).unwrap();
        assert!(l.funded("ab", 1) && !l.funded("ab", 2));
    }
}
