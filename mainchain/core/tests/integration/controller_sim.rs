//! The threshold controller, simulated: blocks arrive when the network's work reaches the
//! threshold. When the work rate jumps 10× up and later 10× down, the block time returns to the
//! 600-second target within a few epochs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use doin_main_core::{Controller, Fx};
use doin_types::Timestamp;

const TARGET_MS: u64 = 600_000;

struct Sim {
    c: Controller,
    time: u64,
    height: u64,
}

impl Sim {
    /// Runs `blocks` blocks at `rate` work per second; returns each block time in ms.
    fn run(&mut self, blocks: usize, rate: Fx) -> Vec<u64> {
        (0..blocks)
            .map(|_| {
                let dt = (self.c.threshold.0 as u128 * 1000 / rate.0 as u128) as u64;
                let parent = Timestamp(self.time);
                self.time += dt.max(1);
                self.height += 1;
                self.c = self.c.after_block(
                    self.height,
                    Timestamp(self.time),
                    parent,
                    TARGET_MS,
                    100,
                    Fx(1),
                );
                dt
            })
            .collect()
    }
}

fn mean(xs: &[u64]) -> u64 {
    xs.iter().sum::<u64>() / xs.len() as u64
}

#[test]
fn converges_after_tenfold_rate_changes_up_and_down() {
    // Start with a threshold that gives 60-second blocks at the initial rate.
    let rate = Fx::ratio(1, 100); // 0.01 work per second
    let mut sim = Sim {
        c: Controller::new(Fx::ratio(6, 10), TARGET_MS, Timestamp(0)),
        time: 0,
        height: 0,
    };
    let within = |xs: &[u64], pct: u64| {
        let m = mean(xs);
        m >= TARGET_MS * (100 - pct) / 100 && m <= TARGET_MS * (100 + pct) / 100
    };

    let warmup = sim.run(400, rate);
    assert!(mean(&warmup[..10]) < TARGET_MS / 5, "starts far too fast");
    assert!(
        within(&warmup[300..], 5),
        "converged: {}",
        mean(&warmup[300..])
    );

    // Ten times more work: blocks come 10× faster at first, then the threshold catches up.
    let up = sim.run(400, Fx(rate.0 * 10));
    assert!(mean(&up[..5]) < TARGET_MS / 5);
    assert!(within(&up[300..], 5), "after 10× up: {}", mean(&up[300..]));

    // Back down by ten.
    let down = sim.run(400, rate);
    assert!(mean(&down[..5]) > TARGET_MS * 5);
    assert!(
        within(&down[300..], 5),
        "after 10× down: {}",
        mean(&down[300..])
    );

    // The threshold tracks the rate: 600 s × 0.01 work/s = 6 work units, within 10 %.
    let t = sim.c.threshold;
    assert!(
        t > Fx::ratio(54, 10) && t < Fx::ratio(66, 10),
        "threshold {t}"
    );
}
