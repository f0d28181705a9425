//! The errors of ports: what a service needs from another part of the node (a chain's state,
//! the other chain, storage) says why it could not answer, so that a caller can tell "ask
//! again later" from "the disk failed" and from "the data is corrupt".

/// Storage failure. Every variant is an operator problem (disk, corruption, misuse), never a
/// client's mistake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("storage backend error: {0}")]
    Backend(String),
    /// The device under the store is full: nothing can be written until space is freed.
    #[error("the storage device is full: {0}")]
    NoSpace(String),
    #[error("unknown column family {0:?}")]
    UnknownColumn(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// Why a port could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// Not known yet (a block not final or not received, a decision not anchored): the same
    /// question may be answered later.
    #[error("{0}")]
    NotYet(String),
    /// Storage failed underneath the port.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The other side is not running (shut down, or not run by this node).
    #[error("{0}")]
    Unavailable(String),
    /// What the port holds makes no sense (a broken invariant, undecodable state).
    #[error("corrupt: {0}")]
    Corrupt(String),
    /// The request itself was refused (a transaction the pool will not take, an unknown or
    /// malformed id): asking again the same way gives the same answer.
    #[error("{0}")]
    Invalid(String),
}

impl PortError {
    /// True when asking again later may succeed: not yet known, or a storage backend error
    /// (a full disk, an I/O error) rather than corruption.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            PortError::NotYet(_)
                | PortError::Store(StoreError::Backend(_) | StoreError::NoSpace(_))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_not_yet_and_backend_failures_are_worth_asking_again() {
        assert!(PortError::NotYet("final".into()).is_transient());
        assert!(PortError::Store(StoreError::Backend("eio".into())).is_transient());
        assert!(PortError::Store(StoreError::NoSpace("full".into())).is_transient());
        assert!(!PortError::Store(StoreError::Corrupt("x".into())).is_transient());
        assert!(!PortError::Corrupt("x".into()).is_transient());
        assert!(!PortError::Invalid("x".into()).is_transient());
        assert!(!PortError::Unavailable("x".into()).is_transient());
    }
}
