//! The difficulty (threshold) controller, recomputed by every node from block times.
//!
//! Two corrections compose: an EMA of block times (α = 1/10) nudges the threshold by at most
//! ±2 % per block toward the target, and every epoch (100 blocks) the threshold is retargeted by
//! expected ÷ actual epoch duration, clamped to [1/4, 4]. All integer arithmetic.

use crate::fixed::Fx;
use doin_types::Timestamp;
use serde::{Deserialize, Serialize};

/// Controller state carried in the main-chain state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Controller {
    /// Threshold the next block must meet.
    pub threshold: Fx,
    /// EMA of block times, in ms.
    pub ema_block_time_ms: u64,
    /// Time of the block that started the current epoch.
    pub epoch_start_time: Timestamp,
}

impl Controller {
    pub fn new(threshold: Fx, target_ms: u64, genesis_time: Timestamp) -> Controller {
        Controller {
            threshold,
            ema_block_time_ms: target_ms,
            epoch_start_time: genesis_time,
        }
    }

    /// The controller after a block at `height` with `time`, whose parent had `parent_time`.
    /// Block times enter the EMA clamped to [0, 10 × target] so a single forged timestamp
    /// moves it a bounded amount.
    pub fn after_block(
        &self,
        height: u64,
        time: Timestamp,
        parent_time: Timestamp,
        target_ms: u64,
        epoch_length: u64,
        min_threshold: Fx,
    ) -> Controller {
        let dt = time
            .0
            .saturating_sub(parent_time.0)
            .min(target_ms.saturating_mul(10));
        // ema += (dt - ema) / 10, in i128 so the difference may be negative.
        let ema = self.ema_block_time_ms as i128;
        let ema = (ema + (dt as i128 - ema) / 10).max(1) as u64;

        // Proportional correction (target - ema) / target, clamped to ±2 %.
        let target = target_ms.max(1) as i128;
        let adj_ppm = ((target - ema as i128) * 1_000_000 / target).clamp(-20_000, 20_000);
        let mut threshold = scale_ppm(self.threshold, 1_000_000 + adj_ppm);

        let mut epoch_start_time = self.epoch_start_time;
        if height % epoch_length == 0 {
            let actual = time.0.saturating_sub(self.epoch_start_time.0).max(1) as i128;
            let expected = target * epoch_length as i128;
            let ppm = (expected * 1_000_000 / actual).clamp(250_000, 4_000_000);
            threshold = scale_ppm(threshold, ppm);
            epoch_start_time = time;
        }
        Controller {
            threshold: threshold.max(min_threshold),
            ema_block_time_ms: ema,
            epoch_start_time,
        }
    }
}

/// `v × ppm / 10^6`, saturating at the i64 range.
fn scale_ppm(v: Fx, ppm: i128) -> Fx {
    let r = v.0 as i128 * ppm / 1_000_000;
    Fx(r.clamp(0, i64::MAX as i128) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_blocks_raise_and_slow_blocks_lower_the_threshold_by_at_most_two_percent() {
        let c = Controller::new(Fx::from_int(100), 600_000, Timestamp(0));
        let fast = c.after_block(1, Timestamp(1_000), Timestamp(0), 600_000, 100, Fx(1));
        assert!(fast.threshold > c.threshold);
        assert!(fast.threshold <= Fx::from_int(102));
        let slow = c.after_block(1, Timestamp(60_000_000), Timestamp(0), 600_000, 100, Fx(1));
        assert!(slow.threshold < c.threshold);
        assert!(slow.threshold >= Fx::from_int(98));
        let floor = Controller::new(Fx(1), 600_000, Timestamp(0));
        let f = floor.after_block(1, Timestamp(6_000_000), Timestamp(0), 600_000, 100, Fx(1));
        assert_eq!(f.threshold, Fx(1));
    }

    #[test]
    fn epoch_retarget_is_clamped_to_a_factor_of_four() {
        let mut c = Controller::new(Fx::from_int(100), 600_000, Timestamp(0));
        c.ema_block_time_ms = 600_000;
        // A whole epoch in one second: at most ×4 (times the per-block 2 %).
        let r = c.after_block(100, Timestamp(1_000), Timestamp(990), 600_000, 100, Fx(1));
        assert!(r.threshold <= Fx::from_int(408) && r.threshold >= Fx::from_int(400));
        assert_eq!(r.epoch_start_time, Timestamp(1_000));
    }
}
