//! A network's entry points, shipped with its genesis file: `network.toml` in the same
//! directory, listing bootstrap peers and DNS seeds. A node reads it at start (when it is
//! there) and adds what it lists to its own `[p2p] bootstrap` and `dns_seeds`, so someone who
//! has only the network's files joins the network (docs/network.md#the-networks-files-dns-seeds-and-mdns).
//!
//! Strict: unknown keys, addresses without a peer id, names that are no domain names and
//! files above [`MAX_BYTES`] are refused with the file's path in the message.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The file's name, beside the genesis file.
pub const FILE_NAME: &str = "network.toml";
/// A larger file is refused unread.
pub const MAX_BYTES: u64 = 64 * 1024;
/// Bootstrap peers a file may list.
pub const MAX_BOOTSTRAP: usize = 256;

#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NetworkFile {
    /// Multiaddresses ending in `/p2p/<peer id>`.
    #[serde(default)]
    pub bootstrap: Vec<String>,
    /// Domain names (see `p2p.dns_seeds`).
    #[serde(default)]
    pub dns_seeds: Vec<String>,
}

/// Where the network file of a node with this genesis file is.
pub fn path_beside(genesis_file: &Path) -> PathBuf {
    genesis_file
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(FILE_NAME)
}

impl NetworkFile {
    /// Reads and checks `path`; `Ok(None)` when there is no such file.
    pub fn load(path: &Path) -> Result<Option<NetworkFile>, String> {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        if meta.len() > MAX_BYTES {
            return Err(format!(
                "{}: {} bytes, above the {MAX_BYTES}-byte limit of a network file",
                path.display(),
                meta.len()
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<NetworkFile, String> {
        use figment::providers::{Format, Toml};
        let file: NetworkFile = figment::Figment::from(Toml::string(text))
            .extract()
            .map_err(|e| e.to_string())?;
        if file.bootstrap.len() > MAX_BOOTSTRAP {
            return Err(format!("at most {MAX_BOOTSTRAP} bootstrap peers"));
        }
        if file.dns_seeds.len() > doin_net::seeds::MAX_SEEDS {
            return Err(format!("at most {} DNS seeds", doin_net::seeds::MAX_SEEDS));
        }
        for a in &file.bootstrap {
            let addr: doin_net::Multiaddr =
                a.parse().map_err(|e| format!("bootstrap {a:?}: {e}"))?;
            if !addr
                .iter()
                .any(|p| matches!(p, doin_net::multiaddr::Protocol::P2p(_)))
            {
                return Err(format!("bootstrap {a:?} must end in /p2p/<peer id>"));
            }
        }
        for seed in &file.dns_seeds {
            doin_net::seeds::check_seed_name(seed).map_err(|e| format!("dns_seeds: {e}"))?;
        }
        Ok(file)
    }
}

/// `ours` followed by what `shipped` adds, each once.
pub fn merged(ours: &[String], shipped: &[String]) -> Vec<String> {
    let mut out = ours.to_vec();
    for s in shipped {
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEER: &str = "12D3KooWGzNzX4AWKpbcv2NWqjGcGJpY9kK4g5yGCAmXfdiyCrQE";

    #[test]
    fn a_network_file_is_read_strictly() {
        let good = format!(
            "bootstrap = [\"/dns4/boot1.example.org/tcp/8646/p2p/{PEER}\"]\n\
             dns_seeds = [\"seed.example.org\"]\n"
        );
        let f = NetworkFile::parse(&good).unwrap();
        assert_eq!(f.bootstrap.len(), 1);
        assert_eq!(f.dns_seeds, vec!["seed.example.org".to_string()]);
        assert_eq!(NetworkFile::parse("").unwrap(), NetworkFile::default());
        for (bad, why) in [
            ("bootstrap = [\"/ip4/203.0.113.7/tcp/8646\"]", "peer id"),
            ("bootstrap = [\"nowhere\"]", "bootstrap"),
            ("dns_seeds = [\"203.0.113.7\"]", "IP address"),
            ("seeds = []", "unknown field"),
        ] {
            let e = NetworkFile::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn the_file_sits_beside_the_genesis_file_and_may_be_absent() {
        let dir = tempfile::tempdir().unwrap();
        let genesis = dir.path().join("genesis.json");
        let path = path_beside(&genesis);
        assert_eq!(path, dir.path().join("network.toml"));
        assert_eq!(NetworkFile::load(&path), Ok(None));
        std::fs::write(&path, "dns_seeds = [\"seed.example.org\"]\n").unwrap();
        assert!(NetworkFile::load(&path).unwrap().is_some());
        std::fs::write(&path, vec![b'#'; MAX_BYTES as usize + 1]).unwrap();
        assert!(NetworkFile::load(&path).unwrap_err().contains("limit"));
        assert_eq!(
            merged(&["a".into(), "b".into()], &["b".into(), "c".into()]),
            vec!["a", "b", "c"]
        );
    }
}
