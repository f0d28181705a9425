//! BOLT11 invoices: what we make parses back to the same terms; an invoice for another network,
//! expired, tampered with, or signed by the wrong key is refused with its reason.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use doin_channels::invoice::*;
use doin_crypto::KeyPair;
use doin_types::{Hash256, Network};
use std::time::Duration;

const NOW: Duration = Duration::from_secs(1_800_000_000);

fn terms() -> InvoiceTerms {
    InvoiceTerms {
        amount_msat: 1_234_567,
        payment_hash: Hash256(doin_tx_core::channel::sha256(&[5; 32])),
        payment_secret: [6; 32],
        description: "verification fee, optimae 42".into(),
        expiry_secs: 600,
        min_final_cltv_blocks: 40,
    }
}

#[test]
fn an_invoice_parses_back_to_its_terms() {
    let payee = KeyPair::generate();
    let text = create_invoice(Network::Devnet, &payee, &terms(), NOW).unwrap();
    assert!(text.starts_with("lnbcrt"), "{text}");
    let parsed = parse_invoice(&text, Network::Devnet, NOW, Some(&payee.public())).unwrap();
    let t = terms();
    assert_eq!(parsed.amount_msat, t.amount_msat);
    assert_eq!(parsed.payment_hash, t.payment_hash);
    assert_eq!(parsed.payment_secret, t.payment_secret);
    assert_eq!(parsed.payee, payee.public());
    assert_eq!(parsed.description, t.description);
    assert_eq!(parsed.created_at, NOW.as_secs());
    assert_eq!(parsed.expires_at, NOW.as_secs() + 600);
    assert_eq!(parsed.min_final_cltv_blocks, 40);
    // Testnet invoices use the signet prefix.
    let testnet = create_invoice(Network::Testnet, &payee, &terms(), NOW).unwrap();
    assert!(testnet.starts_with("lntbs"), "{testnet}");
    // No Bitcoin prefix is borrowed for mainnet.
    assert!(matches!(
        create_invoice(Network::Mainnet, &payee, &terms(), NOW),
        Err(InvoiceError::UnsupportedNetwork(_))
    ));
}

#[test]
fn invoices_for_another_network_expired_tampered_or_from_the_wrong_key_are_refused() {
    let payee = KeyPair::generate();
    let text = create_invoice(Network::Devnet, &payee, &terms(), NOW).unwrap();

    let testnet = create_invoice(Network::Testnet, &payee, &terms(), NOW).unwrap();
    assert!(matches!(
        parse_invoice(&testnet, Network::Devnet, NOW, None),
        Err(InvoiceError::WrongNetwork { .. })
    ));

    let later = NOW + Duration::from_secs(601);
    assert_eq!(
        parse_invoice(&text, Network::Devnet, later, None),
        Err(InvoiceError::Expired {
            expired_at: NOW.as_secs() + 600
        })
    );

    // One character changed anywhere breaks the checksum or the signature.
    for pos in [10, text.len() / 2, text.len() - 8] {
        let mut chars: Vec<char> = text.chars().collect();
        chars[pos] = if chars[pos] == 'q' { 'p' } else { 'q' };
        let tampered: String = chars.into_iter().collect();
        assert!(
            parse_invoice(&tampered, Network::Devnet, NOW, None).is_err(),
            "a change at {pos} went unnoticed"
        );
    }

    // Properly signed by someone else than the payee we expect.
    let stranger = KeyPair::generate();
    let theirs = create_invoice(Network::Devnet, &stranger, &terms(), NOW).unwrap();
    assert_eq!(
        parse_invoice(&theirs, Network::Devnet, NOW, Some(&payee.public())),
        Err(InvoiceError::WrongPayee {
            expected: payee.public(),
            got: stranger.public()
        })
    );

    // Naming the payee's key but signed with another one.
    let forged = forged_invoice(&payee, &stranger);
    assert_eq!(
        parse_invoice(&forged, Network::Devnet, NOW, None),
        Err(InvoiceError::BadSignature)
    );

    assert!(matches!(
        parse_invoice(&"lnbcrt1".repeat(400), Network::Devnet, NOW, None),
        Err(InvoiceError::TooLong(_))
    ));
    assert!(matches!(
        parse_invoice("not an invoice", Network::Devnet, NOW, None),
        Err(InvoiceError::Malformed(_))
    ));
}

/// An invoice whose payee field names `payee` but whose signature is `signer`'s.
fn forged_invoice(payee: &KeyPair, signer: &KeyPair) -> String {
    use bitcoin_hashes::Hash;
    use lightning_invoice::{Currency, InvoiceBuilder, PaymentSecret};
    use secp256k1::{PublicKey, Secp256k1, SecretKey};
    let secp = Secp256k1::new();
    let payee_sk = SecretKey::from_slice(payee.secret_bytes().as_ref()).unwrap();
    let signer_sk = SecretKey::from_slice(signer.secret_bytes().as_ref()).unwrap();
    let t = terms();
    let raw = InvoiceBuilder::new(Currency::Regtest)
        .description(t.description)
        .payment_hash(bitcoin_hashes::sha256::Hash::from_byte_array(
            t.payment_hash.0,
        ))
        .payment_secret(PaymentSecret(t.payment_secret))
        .amount_milli_satoshis(t.amount_msat)
        .duration_since_epoch(NOW)
        .min_final_cltv_expiry_delta(t.min_final_cltv_blocks)
        .payee_pub_key(PublicKey::from_secret_key(&secp, &payee_sk))
        .build_raw()
        .unwrap();
    let signed = raw
        .sign::<_, ()>(|m| Ok(secp.sign_ecdsa_recoverable(m, &signer_sk)))
        .unwrap();
    signed.to_string()
}

/// An independent BOLT11 decoder (the `bolt11` package from PyPI, installed by `.ci/setup`)
/// decodes our invoices to the same terms.
#[test]
fn an_independent_decoder_reads_our_invoices() {
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/interop/.venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run .ci/setup (it installs the Python BOLT11 decoder)",
        python.display()
    );
    let payee = KeyPair::generate();
    let text = create_invoice(Network::Devnet, &payee, &terms(), NOW).unwrap();
    let script = r#"
import sys, json, bolt11
inv = bolt11.decode(sys.argv[1])
print(json.dumps({
    "amount_msat": int(inv.amount_msat),
    "payment_hash": inv.payment_hash,
    "payee": inv.payee,
    "description": inv.description,
    "date": inv.date,
    "expiry": inv.expiry,
    "currency": inv.currency,
    "cltv": inv.min_final_cltv_expiry,
}))
"#;
    let out = std::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(&text)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = terms();
    assert_eq!(v["amount_msat"], t.amount_msat);
    assert_eq!(v["payment_hash"], hex::encode(t.payment_hash.0));
    assert_eq!(v["description"], t.description);
    assert_eq!(v["date"], NOW.as_secs());
    assert_eq!(v["expiry"], 600);
    assert_eq!(v["currency"], "bcrt");
    assert_eq!(v["cltv"], 40);
    // The decoder gives the 33-byte key; its x coordinate is the payee's DOIN key.
    let payee_hex = v["payee"].as_str().unwrap();
    assert_eq!(&payee_hex[2..], hex::encode(payee.public().0));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]

    /// Whatever text a client sends as an invoice, and whatever a genuine invoice becomes with
    /// one character changed: parsing answers an invoice or an error, never a panic, and a
    /// changed invoice is never taken for the original.
    #[test]
    fn arbitrary_or_altered_invoice_text_never_panics(
        text in "\\PC{0,400}",
        at in proptest::prelude::any::<proptest::sample::Index>(),
        with in proptest::prelude::any::<char>(),
    ) {
        let now = Duration::from_secs(1_800_000_000);
        let _ = parse_invoice(&text, Network::Devnet, now, None);
        let payee = KeyPair::generate();
        let genuine = create_invoice(Network::Devnet, &payee, &terms(), now).unwrap();
        let mut chars: Vec<char> = genuine.chars().collect();
        let i = at.index(chars.len());
        let changed = chars[i] != with;
        chars[i] = with;
        let altered: String = chars.into_iter().collect();
        let parsed = parse_invoice(&altered, Network::Devnet, now, None);
        if changed {
            let same = parsed.is_ok_and(|p| p == parse_invoice(&genuine, Network::Devnet, now, None).unwrap());
            proptest::prop_assert!(!same || altered.eq_ignore_ascii_case(&genuine));
        }
    }
}
