//! Why the hub refused an input.

use doin_tx_core::channel::ChannelId;
use doin_types::{Hash256, Height, MsatError, PortError, StoreError};

/// Why the hub refused an input (the REST layer maps these to problem types).
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("no channel {0} at this hub")]
    UnknownChannel(ChannelId),
    #[error("no stream {0}")]
    UnknownStream(Hash256),
    /// The request cannot be done as asked (a client's mistake or a state that forbids it).
    #[error("{0}")]
    Invalid(String),
    /// The channel is closing or closed already: asked again, nothing changes.
    #[error("channel {0} is already closing")]
    AlreadyClosing(ChannelId),
    /// A payee bought the channel and the hub keeps it open until this height.
    #[error("channel {0} is leased to its payee until height {1}")]
    Leased(ChannelId, Height),
    /// The hub has not the money to do it.
    #[error("{0}")]
    Liquidity(String),
    #[error(transparent)]
    Channel(#[from] doin_channels::ChannelError),
    #[error(transparent)]
    Invoice(#[from] doin_channels::InvoiceError),
    /// A chain could not answer or refused a transaction.
    #[error("the transfer chain: {0}")]
    Chain(PortError),
    /// Milli-unit arithmetic overflowed or came up short: the books do not add up.
    #[error("the hub's books: {0}")]
    Money(#[from] MsatError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A fault of this build (an input answered with another input's reply).
    #[error("internal error: {0}")]
    Internal(String),
}

impl HubError {
    /// True when the same request may succeed later unchanged (a chain not answering now).
    pub fn is_transient(&self) -> bool {
        match self {
            HubError::Chain(e) => e.is_transient(),
            HubError::Store(StoreError::Backend(_) | StoreError::NoSpace(_)) => true,
            _ => false,
        }
    }
}
