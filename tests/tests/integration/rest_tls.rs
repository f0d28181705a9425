//! HTTPS for the REST gateway as an operator runs it: a `doin node` with certificate files,
//! the CLI reaching it at `https://` with the CA named in `DOIN_CA_CERT` (and refused without
//! it), plain HTTP refused, and a renewed certificate served after SIGHUP without a restart
//! (a broken one is not taken and the one in use stays); a testnet node refuses a plaintext key
//! file at start.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{block_on, doin, free_port, wait_until, NodeProc};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A CA of its own and a certificate for 127.0.0.1 it signs, written to `dir`: the CA's file,
/// the certificate's and the key's.
fn ca_and_certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("{name} test CA"));
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let paths = (
        dir.join(format!("{name}-ca.pem")),
        dir.join(format!("{name}-cert.pem")),
        dir.join(format!("{name}-key.pem")),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

/// The status of a GET of `url` by a client that trusts `ca`.
fn status_with_ca(url: &str, ca: &Path) -> Option<u16> {
    let pem = std::fs::read(ca).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    block_on(async { Some(client.get(url).send().await.ok()?.status().as_u16()) })
}

/// `doin wallet balance ADDRESS --json --node URL`, trusting `ca` when given.
fn balance(doin: &Path, url: &str, address: &str, ca: Option<&Path>) -> Output {
    let mut c = Command::new(doin);
    c.args(["wallet", "balance", address, "--json", "--node", url]);
    c.env_remove("DOIN_CA_CERT");
    if let Some(ca) = ca {
        c.env("DOIN_CA_CERT", ca);
    }
    c.output().unwrap()
}

#[test]
fn the_cli_reaches_a_node_over_https_and_a_renewed_certificate_is_served_after_sighup() {
    let _nodes = common::node_processes();
    let dir = tempfile::tempdir().unwrap();
    let doin = doin();
    let password = dir.path().join("password");
    std::fs::write(&password, "tls test\n").unwrap();
    let (key, validator) = common::new_testnet_key(&doin, &password, dir.path(), "validator");
    let genesis = dir.path().join("genesis.json");
    common::testnet_genesis(
        &doin,
        "tls",
        &validator,
        &[(&validator, 1000)],
        500,
        &genesis,
    );

    // A plaintext key file is a devnet's: a testnet node refuses it at start, and says why.
    let plain = common::write_key(
        dir.path(),
        "plain",
        &doin_crypto::KeyPair::from_secret_bytes(&[9; 32]).unwrap(),
    );
    let refused = NodeProc::tx_node(
        dir.path(),
        "plain-node",
        &genesis,
        "127.0.0.1",
        &[],
        500,
        &NodeProc::producer_toml(&plain, &password),
    );
    let out = Command::new(&doin)
        .args(["node", "--config"])
        .arg(&refused.config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("plaintext devnet key file"), "{err}");

    // The certificate's files are the operator's: renewed in place.
    let (ca1, cert1, key1) = ca_and_certificate(dir.path(), "first");
    let (ca2, cert2, key2) = ca_and_certificate(dir.path(), "second");
    let (cert, cert_key) = (
        dir.path().join("node-cert.pem"),
        dir.path().join("node-key.pem"),
    );
    std::fs::copy(&cert1, &cert).unwrap();
    std::fs::copy(&key1, &cert_key).unwrap();

    let mut node = NodeProc::tx_node(
        dir.path(),
        "n0",
        &genesis,
        "127.0.0.1",
        &[],
        500,
        &NodeProc::producer_toml(&key, &password),
    );
    let admin_port = free_port("127.0.0.1");
    let log = std::fs::File::create(&node.log).unwrap();
    let child = Command::new(&doin)
        .args(["node", "--config"])
        .arg(&node.config)
        .env("RUST_LOG", "info,libp2p=warn")
        .env("DOIN_REST__TLS_CERT_FILE", &cert)
        .env("DOIN_REST__TLS_KEY_FILE", &cert_key)
        .env("DOIN_REST__ADMIN_LISTEN", format!("127.0.0.1:{admin_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    node.child = Some(child);
    let https = node.rest.replace("http://", "https://");

    // Trusting the node's CA, the CLI reads over HTTPS.
    let read = wait_until("the node answers over https", 60, || {
        let out = balance(&doin, &https, &validator, Some(&ca1));
        out.status.success().then_some(out)
    });
    let v: serde_json::Value =
        serde_json::from_slice(read.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert!(v.get("balance").is_some(), "{v}");
    let log = std::fs::read_to_string(&node.log).unwrap();
    assert!(log.contains("scheme=\"https\""), "{}", node.log_tail());
    // Without it, or with another CA, the certificate is refused; plain HTTP gets nowhere.
    for ca in [None, Some(ca2.as_path())] {
        let out = balance(&doin, &https, &validator, ca);
        assert!(!out.status.success(), "{ca:?}");
        let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
        assert!(err.contains("cannot reach the node"), "{err}");
    }
    assert!(!balance(&doin, &node.rest, &validator, Some(&ca1))
        .status
        .success());
    // The metrics are on the admin listener (over TLS as well), not on the public one.
    let admin = format!("https://127.0.0.1:{admin_port}");
    assert_eq!(status_with_ca(&format!("{admin}/metrics"), &ca1), Some(200));
    assert_eq!(status_with_ca(&format!("{https}/metrics"), &ca1), Some(404));

    // Renewed in place and SIGHUP: new connections get the new certificate, same process.
    std::fs::copy(&cert2, &cert).unwrap();
    std::fs::copy(&key2, &cert_key).unwrap();
    let hup = |pid: &str| {
        assert!(Command::new("kill")
            .args(["-HUP", pid])
            .status()
            .unwrap()
            .success())
    };
    hup(&pid);
    wait_until("the renewed certificate is served", 30, || {
        balance(&doin, &https, &validator, Some(&ca2))
            .status
            .success()
            .then_some(())
    });
    assert!(!balance(&doin, &https, &validator, Some(&ca1))
        .status
        .success());
    assert!(node.child.as_mut().unwrap().try_wait().unwrap().is_none());

    // A broken file is not taken: the certificate in use stays, and the log says why.
    std::fs::write(&cert, "not a certificate").unwrap();
    hup(&pid);
    wait_until("the failed reload is logged", 30, || {
        std::fs::read_to_string(&node.log)
            .unwrap()
            .contains("was not reloaded")
            .then_some(())
    });
    assert!(balance(&doin, &https, &validator, Some(&ca2))
        .status
        .success());
    assert!(node.child.as_mut().unwrap().try_wait().unwrap().is_none());
}
