//! `doin snapshot`: write a transfer-state snapshot from a node's data directory, check
//! a snapshot file, and bootstrap an empty data directory from one (`docs/cli.md#doin-snapshot-`).
//! The format and its checks are `doin-tx-core`'s and `doin-tx-node`'s; this module only opens
//! what the configuration names and reports progress.

use crate::config::NodeConfig;
use crate::run::{open_database, read_genesis};
use anyhow::{anyhow, bail};
use doin_store::{KvStore, RocksConfig, RocksStore};
use doin_tx_core::snapshot::{SnapshotHead, TARGET_CHUNK_BYTES};
use doin_tx_core::ChainParams;
use doin_tx_node::history::HistoryMode;
use doin_tx_node::snapshot::{self, Progress};
use doin_tx_node::store::{ChainStore, PruneConfig, SCHEMA_VERSION};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(clap::Subcommand, Debug)]
pub enum SnapshotCommand {
    /// Write a snapshot of the transfer state at the newest final block (of a stopped node, or
    /// of a running one, whose database is read beside it).
    Export {
        /// The node's configuration file (its data directory and genesis).
        #[arg(long)]
        config: PathBuf,
        /// File to write (replaced atomically once complete).
        #[arg(long)]
        out: PathBuf,
    },
    /// Check a snapshot file completely and print what it holds.
    Inspect {
        file: PathBuf,
        /// Genesis file of the chain: with it the snapshot's block is proven final from genesis
        /// too; without it only its own consistency (chunks, proofs, root) is checked.
        #[arg(long)]
        genesis: Option<PathBuf>,
    },
    /// Bootstrap an empty data directory from a snapshot file, checked from the genesis file
    /// alone. The node must run with `storage.prune = "pruned"`.
    Import {
        /// The node's configuration file.
        #[arg(long)]
        config: PathBuf,
        file: PathBuf,
    },
}

pub fn run(command: SnapshotCommand) -> anyhow::Result<()> {
    match command {
        SnapshotCommand::Export { config, out } => {
            let cfg = load(&config)?;
            let spec = read_genesis(&cfg.genesis_file)?;
            let params = ChainParams::from_genesis(&spec)?;
            let reading = ReadOnly::open(&cfg)?;
            let store = ChainStore::new(reading.kv.clone(), PruneConfig::default());
            match store.genesis_spec()? {
                Some(stored) if stored == spec => {}
                Some(_) => bail!(
                    "the data directory holds another chain than {} describes",
                    cfg.genesis_file.display()
                ),
                None => bail!("the data directory holds no chain yet"),
            }
            if store.schema_version()? != Some(SCHEMA_VERSION) {
                bail!("the data directory uses another storage layout than this binary reads");
            }
            let mut bar = ProgressLine::new("exporting");
            let head = snapshot::export(&store, &params, &out, TARGET_CHUNK_BYTES, &mut |p| {
                bar.show(p)
            })?;
            bar.done();
            drop(store);
            reading.close()?;
            println!("wrote {}", out.display());
            print_head(&head, None);
            Ok(())
        }
        SnapshotCommand::Inspect { file, genesis } => {
            let spec = genesis.as_deref().map(read_genesis).transpose()?;
            let mut bar = ProgressLine::new("checking");
            let head = snapshot::verify_file(&file, spec.as_ref(), &mut |p| bar.show(p))
                .map_err(|e| anyhow!("{}: refused: {e}", file.display()))?;
            bar.done();
            print_head(&head, Some(spec.is_some()));
            Ok(())
        }
        SnapshotCommand::Import { config, file } => {
            let cfg = load(&config)?;
            let head = import(&cfg, &file)?;
            println!(
                "imported the state at height {} into {}; start the node to follow the chain from there",
                head.manifest.height,
                cfg.data_dir.display()
            );
            Ok(())
        }
    }
}

/// The node's database opened for reading: directly when no node runs on it, else beside the
/// running node as a RocksDB secondary (its own files in a directory removed afterwards).
struct ReadOnly {
    kv: Arc<dyn KvStore>,
    secondary: Option<PathBuf>,
}

impl ReadOnly {
    fn open(cfg: &NodeConfig) -> anyhow::Result<ReadOnly> {
        match open_database(cfg) {
            Ok(kv) => Ok(ReadOnly {
                kv,
                secondary: None,
            }),
            Err(e) if e.to_string().to_ascii_lowercase().contains("lock") => {
                let dir = cfg
                    .data_dir
                    .join(format!("export-secondary-{}", std::process::id()));
                let kv = RocksStore::open_secondary(
                    &cfg.data_dir.join("db"),
                    &dir,
                    &RocksConfig::default(),
                )
                .map_err(|e| anyhow!("cannot read the running node's database: {e}"))?;
                eprintln!(
                    "a node is running on this data directory: reading its database beside it"
                );
                Ok(ReadOnly {
                    kv: Arc::new(kv),
                    secondary: Some(dir),
                })
            }
            Err(e) => Err(e),
        }
    }

    fn close(self) -> anyhow::Result<()> {
        drop(self.kv);
        if let Some(dir) = self.secondary {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| anyhow!("cannot remove {}: {e}", dir.display()))?;
        }
        Ok(())
    }
}

fn load(config: &Path) -> anyhow::Result<NodeConfig> {
    let cfg = NodeConfig::load(Some(config)).map_err(|e| anyhow!(e))?;
    cfg.validate().map_err(|e| anyhow!(e))?;
    Ok(cfg)
}

/// Imports `file` into the empty data directory of `cfg` (also `doin node --snapshot`).
pub fn import(cfg: &NodeConfig, file: &Path) -> anyhow::Result<SnapshotHead> {
    if cfg.storage.prune != HistoryMode::Pruned {
        bail!(
            "a node bootstrapped from a snapshot has no history before it: set `storage.prune = \"pruned\"` in its configuration"
        );
    }
    let spec = read_genesis(&cfg.genesis_file)?;
    let kv = open_database(cfg)?;
    let mut bar = ProgressLine::new("importing");
    let head = snapshot::import(kv, &spec, file, &mut |p| bar.show(p))
        .map_err(|e| anyhow!("{}: refused: {e}", file.display()))?;
    bar.done();
    Ok(head)
}

/// `doin node --snapshot FILE`: imports `file` when the data directory holds no chain yet, and
/// leaves a directory that already holds one alone (so the flag can stay in a service file).
pub fn bootstrap(cfg: &NodeConfig, file: &Path) -> anyhow::Result<()> {
    let holds_chain = {
        let kv = open_database(cfg)?;
        let store = doin_tx_node::store::ChainStore::new(kv, Default::default());
        store.genesis_spec()?.is_some()
    };
    if holds_chain {
        tracing::info!(
            file = %file.display(),
            "the data directory already holds a chain; --snapshot is not used"
        );
        return Ok(());
    }
    let head = import(cfg, file)?;
    tracing::info!(
        height = head.manifest.height,
        "bootstrapped from the snapshot"
    );
    Ok(())
}

fn print_head(head: &SnapshotHead, finality_checked: Option<bool>) {
    let m = &head.manifest;
    println!("chain id     {}", m.chain_id);
    println!("height       {}", m.height);
    println!("block hash   {}", m.block_hash.to_hex());
    println!("state root   {}", m.state_root.to_hex());
    println!(
        "state        {} entries in {} chunks, {} bytes",
        m.entries(),
        m.chunks.len(),
        m.chunk_bytes()
    );
    println!("epoch hops   {}", head.finality.hops.len());
    match finality_checked {
        Some(true) => {
            println!("verified     finality from the genesis file, every chunk, the state root")
        }
        Some(false) => println!(
            "verified     every chunk and the state root; finality not checked (give --genesis)"
        ),
        None => {}
    }
}

/// One progress line on stderr: redrawn in place on a terminal, a line per tenth otherwise.
struct ProgressLine {
    what: &'static str,
    tty: bool,
    last_tenth: usize,
}

impl ProgressLine {
    fn new(what: &'static str) -> ProgressLine {
        ProgressLine {
            what,
            tty: std::io::stderr().is_terminal(),
            last_tenth: 0,
        }
    }

    fn show(&mut self, p: Progress) {
        let of = if p.chunks_total > 0 {
            format!("/{}", p.chunks_total)
        } else {
            String::new()
        };
        let line = format!(
            "{}: {}{of} chunks, {} entries, {} MiB",
            self.what,
            p.chunks_done,
            p.entries_done,
            p.bytes_done >> 20
        );
        if self.tty {
            eprint!("\r{line}");
            let _ = std::io::stderr().flush();
        } else {
            let tenth = (p.chunks_done * 10)
                .checked_div(p.chunks_total)
                .unwrap_or(p.chunks_done / 100);
            if tenth > self.last_tenth {
                self.last_tenth = tenth;
                eprintln!("{line}");
            }
        }
    }

    fn done(&self) {
        if self.tty {
            eprintln!();
        }
    }
}
