//! The channel state machine and invoices, in one test binary.

mod invoice;
mod machine;
