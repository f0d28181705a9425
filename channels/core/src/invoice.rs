//! BOLT11 invoices that name channel payments (docs/channels.md), made and checked with
//! `lightning-invoice`.
//!
//! Mapping: the invoice amount in millisatoshi *is* the amount in DOIN milli-units; the payment
//! hash is the HTLC's hash; the minimum final CLTV delta counts transfer-chain blocks; the
//! payee's key is the secp256k1 key behind its DOIN (x-only) key. Devnet invoices use
//! `Currency::Regtest` (`lnbcrt…`), testnet `Currency::Signet` (`lntbs…`); mainnet has no
//! currency assigned yet and is refused rather than borrowing Bitcoin's prefix.
//!
//! Checking an invoice on receipt ([`parse_invoice`]) refuses anything malformed or
//! oversize, a bad signature, another network, an expired invoice, one without an amount, and
//! (when the caller knows whom it pays) one signed by another key. Time is an argument: this
//! module reads no clock.

use bitcoin_hashes::{sha256, Hash};
use doin_crypto::KeyPair;
use doin_types::{Hash256, Network, PublicKeyBytes};
use lightning_invoice::{
    Bolt11Invoice, Bolt11InvoiceDescriptionRef, Currency, InvoiceBuilder, PaymentSecret,
};
use secp256k1::{Message, PublicKey, Secp256k1, SecretKey};
use std::str::FromStr;
use std::time::Duration;

/// Longest invoice text accepted (BOLT11 itself has no limit; ours carry no route hints).
pub const MAX_INVOICE_CHARS: usize = 2_048;
/// Longest description put in an invoice.
pub const MAX_DESCRIPTION_BYTES: usize = 639;

/// Why an invoice cannot be made or is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvoiceError {
    #[error("the invoice is {0} characters, more than the {MAX_INVOICE_CHARS} accepted")]
    TooLong(usize),
    #[error("not a valid BOLT11 invoice: {0}")]
    Malformed(String),
    #[error("the invoice's signature does not verify")]
    BadSignature,
    #[error("the invoice is for {got}, this node runs {expected}")]
    WrongNetwork { expected: String, got: String },
    #[error("no invoice currency is assigned to {0} yet")]
    UnsupportedNetwork(String),
    #[error("the invoice expired at {expired_at} (unix seconds)")]
    Expired { expired_at: u64 },
    #[error("the invoice names no amount")]
    NoAmount,
    #[error("the invoice is signed by {got}, not by the expected payee {expected}")]
    WrongPayee {
        expected: PublicKeyBytes,
        got: PublicKeyBytes,
    },
    #[error("cannot make the invoice: {0}")]
    Create(String),
}

/// The invoice currency of a DOIN network.
pub fn currency_of(network: Network) -> Result<Currency, InvoiceError> {
    match network {
        Network::Devnet => Ok(Currency::Regtest),
        Network::Testnet => Ok(Currency::Signet),
        Network::Mainnet => Err(InvoiceError::UnsupportedNetwork(network.to_string())),
    }
}

/// What an invoice asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvoiceTerms {
    pub amount_msat: u64,
    pub payment_hash: Hash256,
    /// Random per invoice; the payer echoes it so a probe cannot guess the payee's terms.
    pub payment_secret: [u8; 32],
    pub description: String,
    /// Seconds after creation the invoice stays payable.
    pub expiry_secs: u64,
    /// Blocks the last HTLC must still have to run when it reaches the payee.
    pub min_final_cltv_blocks: u64,
}

/// A checked invoice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedInvoice {
    pub amount_msat: u64,
    pub payment_hash: Hash256,
    pub payment_secret: [u8; 32],
    /// The payee's DOIN key (x-only form of the key that signed the invoice).
    pub payee: PublicKeyBytes,
    pub description: String,
    pub created_at: u64,
    pub expires_at: u64,
    pub min_final_cltv_blocks: u64,
}

fn secret_key(key: &KeyPair) -> Result<SecretKey, InvoiceError> {
    SecretKey::from_slice(key.secret_bytes().as_ref())
        .map_err(|e| InvoiceError::Create(e.to_string()))
}

fn doin_key(pk: &PublicKey) -> PublicKeyBytes {
    PublicKeyBytes(pk.x_only_public_key().0.serialize())
}

/// Makes and signs an invoice for `terms`, payable to `payee` on `network`, created at `now`
/// (time since the Unix epoch).
pub fn create_invoice(
    network: Network,
    payee: &KeyPair,
    terms: &InvoiceTerms,
    now: Duration,
) -> Result<String, InvoiceError> {
    if terms.description.len() > MAX_DESCRIPTION_BYTES {
        return Err(InvoiceError::Create(format!(
            "the description is longer than {MAX_DESCRIPTION_BYTES} bytes"
        )));
    }
    if terms.amount_msat == 0 {
        return Err(InvoiceError::NoAmount);
    }
    let secp = Secp256k1::new();
    let sk = secret_key(payee)?;
    let pk = PublicKey::from_secret_key(&secp, &sk);
    let invoice = InvoiceBuilder::new(currency_of(network)?)
        .description(terms.description.clone())
        .payment_hash(sha256::Hash::from_byte_array(terms.payment_hash.0))
        .payment_secret(PaymentSecret(terms.payment_secret))
        .amount_milli_satoshis(terms.amount_msat)
        .duration_since_epoch(now)
        .expiry_time(Duration::from_secs(terms.expiry_secs))
        .min_final_cltv_expiry_delta(terms.min_final_cltv_blocks)
        .payee_pub_key(pk)
        .build_signed(|m: &Message| secp.sign_ecdsa_recoverable(m, &sk))
        .map_err(|e| InvoiceError::Create(e.to_string()))?;
    Ok(invoice.to_string())
}

/// Parses and checks an invoice received for `network` at `now`. With `expected_payee`, the
/// invoice must be signed by that key.
pub fn parse_invoice(
    text: &str,
    network: Network,
    now: Duration,
    expected_payee: Option<&PublicKeyBytes>,
) -> Result<ParsedInvoice, InvoiceError> {
    if text.len() > MAX_INVOICE_CHARS {
        return Err(InvoiceError::TooLong(text.len()));
    }
    // Parsing checks the checksum, the field rules and the signature (against the payee key
    // the invoice names, or the one recovered from the signature).
    let invoice = Bolt11Invoice::from_str(text.trim()).map_err(|e| match e {
        lightning_invoice::ParseOrSemanticError::SemanticError(
            lightning_invoice::Bolt11SemanticError::InvalidSignature,
        ) => InvoiceError::BadSignature,
        other => InvoiceError::Malformed(other.to_string()),
    })?;
    invoice
        .check_signature()
        .map_err(|_| InvoiceError::BadSignature)?;
    let expected = currency_of(network)?;
    if invoice.currency() != expected {
        return Err(InvoiceError::WrongNetwork {
            expected: format!("{network} ({expected:?})"),
            got: format!("{:?}", invoice.currency()),
        });
    }
    let created_at = invoice.duration_since_epoch().as_secs();
    let expires_at = created_at.saturating_add(invoice.expiry_time().as_secs());
    if invoice.would_expire(now) {
        return Err(InvoiceError::Expired {
            expired_at: expires_at,
        });
    }
    let amount_msat = invoice
        .amount_milli_satoshis()
        .ok_or(InvoiceError::NoAmount)?;
    let payee = doin_key(&invoice.get_payee_pub_key());
    if let Some(expected) = expected_payee {
        if *expected != payee {
            return Err(InvoiceError::WrongPayee {
                expected: *expected,
                got: payee,
            });
        }
    }
    let description = match invoice.description() {
        Bolt11InvoiceDescriptionRef::Direct(d) => d.to_string(),
        Bolt11InvoiceDescriptionRef::Hash(h) => format!("(description hash {})", h.0),
    };
    Ok(ParsedInvoice {
        amount_msat,
        payment_hash: Hash256(invoice.payment_hash().to_byte_array()),
        payment_secret: invoice.payment_secret().0,
        payee,
        description,
        created_at,
        expires_at,
        min_final_cltv_blocks: invoice.min_final_cltv_expiry_delta(),
    })
}
