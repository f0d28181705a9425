//! RFC 6962 Merkle trees with tagged hashes.
//!
//! Leaves and inner nodes use different tags (`doin/merkle/leaf`, `doin/merkle/node`), so an inner
//! node can never be presented as a leaf (second-preimage protection); the split point is the
//! largest power of two below the size, so the last leaf is never duplicated (no CVE-2012-2459
//! style ambiguity). The empty tree has its own tagged hash.

use crate::hash::{tagged_hash, tagged_hash_parts};
use doin_types::Hash256;

pub const TAG_LEAF: &str = "doin/merkle/leaf";
pub const TAG_NODE: &str = "doin/merkle/node";
pub const TAG_EMPTY: &str = "doin/merkle/empty";

pub fn leaf_hash(item: &[u8]) -> Hash256 {
    tagged_hash(TAG_LEAF, item)
}

pub fn node_hash(left: &Hash256, right: &Hash256) -> Hash256 {
    tagged_hash_parts(TAG_NODE, &[&left.0, &right.0])
}

pub fn empty_root() -> Hash256 {
    tagged_hash(TAG_EMPTY, b"")
}

/// Largest power of two strictly below `n` (n ≥ 2).
fn split_point(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// Root over already-hashed leaves.
fn root_of_leaf_hashes(hashes: &[Hash256]) -> Hash256 {
    match hashes.len() {
        0 => empty_root(),
        1 => hashes[0],
        n => {
            let k = split_point(n);
            node_hash(
                &root_of_leaf_hashes(&hashes[..k]),
                &root_of_leaf_hashes(&hashes[k..]),
            )
        }
    }
}

/// Merkle root of a list of items (each item is hashed as a leaf).
pub fn root<T: AsRef<[u8]>>(items: &[T]) -> Hash256 {
    let leaves: Vec<Hash256> = items.iter().map(|i| leaf_hash(i.as_ref())).collect();
    root_of_leaf_hashes(&leaves)
}

/// An inclusion proof: the RFC 6962 audit path of the leaf at `index` in a tree of `size` items.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InclusionProof {
    pub index: u64,
    pub size: u64,
    pub path: Vec<Hash256>,
}

/// Builds the inclusion proof of `items[index]`, or `None` if `index` is out of range.
pub fn prove<T: AsRef<[u8]>>(items: &[T], index: usize) -> Option<InclusionProof> {
    if index >= items.len() {
        return None;
    }
    let leaves: Vec<Hash256> = items.iter().map(|i| leaf_hash(i.as_ref())).collect();
    let mut path = Vec::new();
    audit_path(&leaves, index, &mut path);
    Some(InclusionProof {
        index: index as u64,
        size: items.len() as u64,
        path,
    })
}

fn audit_path(leaves: &[Hash256], index: usize, out: &mut Vec<Hash256>) {
    if leaves.len() <= 1 {
        return;
    }
    let k = split_point(leaves.len());
    if index < k {
        audit_path(&leaves[..k], index, out);
        out.push(root_of_leaf_hashes(&leaves[k..]));
    } else {
        audit_path(&leaves[k..], index - k, out);
        out.push(root_of_leaf_hashes(&leaves[..k]));
    }
}

/// Checks that `item` is at `proof.index` of a tree of `proof.size` items with root `root`.
pub fn verify_inclusion(root: &Hash256, item: &[u8], proof: &InclusionProof) -> bool {
    if proof.index >= proof.size {
        return false;
    }
    // RFC 9162 §2.1.3.2 verification algorithm.
    let (mut fnode, mut snode) = (proof.index, proof.size - 1);
    let mut r = leaf_hash(item);
    for p in &proof.path {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && r == *root
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| vec![i as u8, (i >> 8) as u8]).collect()
    }

    #[test]
    fn shapes() {
        assert_eq!(root::<Vec<u8>>(&[]), empty_root());
        let one = items(1);
        assert_eq!(root(&one), leaf_hash(&one[0]));
        let three = items(3);
        let expected = node_hash(
            &node_hash(&leaf_hash(&three[0]), &leaf_hash(&three[1])),
            &leaf_hash(&three[2]),
        );
        assert_eq!(root(&three), expected);
        // No duplicated last leaf: [a, b, c] and [a, b, c, c] differ.
        let mut four = three.clone();
        four.push(three[2].clone());
        assert_ne!(root(&three), root(&four));
    }

    #[test]
    fn every_proof_verifies_and_wrong_ones_fail() {
        for n in 1..40 {
            let its = items(n);
            let r = root(&its);
            for i in 0..n {
                let p = prove(&its, i).unwrap();
                assert!(verify_inclusion(&r, &its[i], &p), "n={n} i={i}");
                assert!(!verify_inclusion(&r, b"other", &p));
                let mut wrong_index = p.clone();
                wrong_index.index = ((i + 1) % n) as u64;
                if n > 1 {
                    assert!(!verify_inclusion(&r, &its[i], &wrong_index));
                }
            }
            assert!(prove(&its, n).is_none());
        }
    }
}
