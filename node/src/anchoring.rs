//! The transfer chain's view of the main chain (its `MainView` port), implemented over the
//! main chain this process runs. This is the only place the two chains meet; neither chain
//! crate knows the other.

use doin_main_node::MainChain;
use doin_tx_core::MainView;
use doin_types::{Credit, Height, MainAnchor, MainEffects};
use std::sync::Arc;

/// How deep a main block must be before the transfer chain anchors it: with depth 1 the main
/// tip itself is never anchored, so replacing the tip touches nothing already credited.
pub const ANCHOR_DEPTH: u64 = 1;

pub struct MainChainAnchors {
    main: Arc<MainChain>,
}

impl MainChainAnchors {
    pub fn new(main: Arc<MainChain>) -> MainChainAnchors {
        MainChainAnchors { main }
    }
}

impl MainView for MainChainAnchors {
    fn effects(&self, height: Height) -> Result<Option<MainEffects>, String> {
        let Some(block) = self.main.block(height).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let hash = block.hash().map_err(|e| e.to_string())?;
        Ok(Some(MainEffects {
            height,
            hash,
            parent: block.header.parent,
            credits: block
                .body
                .coinbase
                .iter()
                .filter(|p| !p.amount.is_zero())
                .map(|p| Credit {
                    key: p.key,
                    amount: p.amount,
                })
                .collect(),
        }))
    }

    fn anchor_candidate(&self) -> Result<Option<MainAnchor>, String> {
        let head = self.main.head();
        let Some(height) = head
            .header
            .height
            .checked_sub(ANCHOR_DEPTH)
            .filter(|h| *h > 0)
        else {
            return Ok(None);
        };
        Ok(self.effects(height)?.map(|e| MainAnchor {
            height,
            hash: e.hash,
        }))
    }
}
