//! TLS for the REST server: a certificate chain and its key in PEM files, read at start and
//! again on [`Tls::reload`] (at every SIGHUP with [`reload_on_hangup`]), so a renewed certificate is served
//! without a restart. A reload that fails keeps the certificate in use and says why.
//!
//! It owns no listener: [`crate::serve`] asks it for the acceptor of each new connection.

use parking_lot::RwLock;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// The certificate files and the acceptor made from them.
#[derive(Clone)]
pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    current: Arc<RwLock<TlsAcceptor>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads the files; an error names the file and what is wrong with it.
    pub fn load(cert: &Path, key: &Path) -> Result<Tls, String> {
        let acceptor = acceptor(cert, key)?;
        Ok(Tls {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: Arc::new(RwLock::new(acceptor)),
        })
    }

    /// Reads the files again; new connections get the new certificate, open ones keep theirs.
    /// On error nothing changes.
    pub fn reload(&self) -> Result<(), String> {
        let fresh = acceptor(&self.cert, &self.key)?;
        *self.current.write() = fresh;
        Ok(())
    }

    /// The acceptor for a new connection.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        self.current.read().clone()
    }
}

fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: not a PEM certificate chain: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in the file", cert.display()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("{}: not a PEM private key: {e}", key.display()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| {
            format!(
                "{} and {}: the key does not go with the certificate: {e}",
                cert.display(),
                key.display()
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Answers every SIGHUP until `shutdown` turns true: the certificate files of `tls` are read
/// again (a reload that fails is logged and the certificate in use stays); without TLS there
/// is nothing to reload, and the signal is only logged (it must not end the process, as it
/// would by default: `systemctl reload` sends it).
pub async fn reload_on_hangup(
    tls: Option<Tls>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), String> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    loop {
        tokio::select! {
            got = hangups.recv() => {
                if got.is_none() {
                    return Ok(());
                }
                match tls.as_ref().map(Tls::reload) {
                    Some(Ok(())) => tracing::info!("SIGHUP: reloaded the REST certificate"),
                    Some(Err(e)) => tracing::error!(error = %e, "SIGHUP: the REST certificate was not reloaded; the one in use stays"),
                    None => tracing::info!("SIGHUP: nothing to reload (the REST server has no certificate)"),
                }
            }
            _ = shutdown.changed() => return Ok(()),
        }
    }
}
