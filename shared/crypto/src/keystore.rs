//! Key files on disk.
//!
//! Two kinds, told apart by the `kind` field:
//! - `encrypted`: the secret key sealed with XChaCha20-Poly1305 under a key derived by scrypt
//!   from a password. The public key is the associated data, so a file whose public key was
//!   edited does not open. This is the only kind a non-devnet node or wallet should use.
//! - `plaintext-devnet-only`: the secret in hex, written by `doin devnet` for throwaway dev
//!   accounts. Its name says what it is for.
//!
//! Files are created with mode 0600, written to a temporary file, fsynced, then renamed, so a
//! crash never leaves a half-written key behind.

use crate::keys::KeyPair;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use doin_types::PublicKeyBytes;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;
use zeroize::Zeroizing;

pub const KIND_ENCRYPTED: &str = "encrypted";
pub const KIND_PLAINTEXT: &str = "plaintext-devnet-only";

/// scrypt cost used for new files: 2^15 × 8 × 128 B = 32 MiB of memory per attempt.
pub const DEFAULT_SCRYPT_LOG_N: u8 = 15;
/// Files asking for more than this (1 GiB) are refused rather than exhausting memory.
const MAX_SCRYPT_LOG_N: u8 = 20;
/// A key file is a few hundred bytes; anything far larger is not one.
const MAX_FILE_LEN: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    #[error("cannot read or write key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("key file {0} already exists; refusing to overwrite it")]
    Exists(String),
    #[error("key file is not valid: {0}")]
    Format(String),
    #[error("wrong password, or the key file was modified")]
    Decrypt,
    #[error("key file needs a password but none was given")]
    PasswordRequired,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KdfParams {
    name: String,
    log_n: u8,
    r: u32,
    p: u32,
    salt: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CipherParams {
    name: String,
    nonce: String,
}

/// The JSON document stored in a key file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    pub version: u32,
    pub kind: String,
    pub public_key: PublicKeyBytes,
    #[serde(default)]
    kdf: Option<KdfParams>,
    #[serde(default)]
    cipher: Option<CipherParams>,
    #[serde(default)]
    ciphertext: Option<String>,
    #[serde(default)]
    secret_key: Option<String>,
    #[serde(default)]
    warning: Option<String>,
}

impl KeyFile {
    /// Seals `key` under `password` with scrypt cost `2^log_n`.
    pub fn encrypt(key: &KeyPair, password: &[u8], log_n: u8) -> Result<KeyFile, KeystoreError> {
        let mut salt = [0u8; 16];
        let mut nonce = [0u8; 24];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut salt);
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut nonce);
        let kdf = KdfParams {
            name: "scrypt".into(),
            log_n,
            r: 8,
            p: 1,
            salt: hex::encode(salt),
        };
        let sym = derive_key(password, &kdf)?;
        let cipher = XChaCha20Poly1305::new(sym.as_ref().into());
        let public = key.public();
        let secret = key.secret_bytes();
        let ciphertext = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: secret.as_ref(),
                    aad: &public.0,
                },
            )
            .map_err(|_| KeystoreError::Format("encryption failed".into()))?;
        Ok(KeyFile {
            version: 1,
            kind: KIND_ENCRYPTED.into(),
            public_key: public,
            kdf: Some(kdf),
            cipher: Some(CipherParams {
                name: "xchacha20poly1305".into(),
                nonce: hex::encode(nonce),
            }),
            ciphertext: Some(hex::encode(ciphertext)),
            secret_key: None,
            warning: None,
        })
    }

    /// A plaintext file for devnet accounts only.
    pub fn plaintext_devnet(key: &KeyPair) -> KeyFile {
        KeyFile {
            version: 1,
            kind: KIND_PLAINTEXT.into(),
            public_key: key.public(),
            kdf: None,
            cipher: None,
            ciphertext: None,
            secret_key: Some(hex::encode(key.secret_bytes().as_ref())),
            warning: Some(
                "UNENCRYPTED devnet key. Anyone who can read this file controls the account. \
                 Never use it on testnet or mainnet."
                    .into(),
            ),
        }
    }

    pub fn is_encrypted(&self) -> bool {
        self.kind == KIND_ENCRYPTED
    }

    /// Opens the key. `password` is required for encrypted files and ignored for plaintext ones.
    pub fn unlock(&self, password: Option<&[u8]>) -> Result<KeyPair, KeystoreError> {
        if self.version != 1 {
            return Err(KeystoreError::Format(format!(
                "unsupported version {}",
                self.version
            )));
        }
        let secret: Zeroizing<[u8; 32]> = match self.kind.as_str() {
            KIND_ENCRYPTED => {
                let password = password.ok_or(KeystoreError::PasswordRequired)?;
                let (kdf, cipher_params, ct) = match (&self.kdf, &self.cipher, &self.ciphertext) {
                    (Some(k), Some(c), Some(t)) => (k, c, t),
                    _ => return Err(KeystoreError::Format("missing kdf/cipher fields".into())),
                };
                if cipher_params.name != "xchacha20poly1305" {
                    return Err(KeystoreError::Format(format!(
                        "unknown cipher {:?}",
                        cipher_params.name
                    )));
                }
                let nonce = hex_exact::<24>(&cipher_params.nonce, "nonce")?;
                let ct = hex::decode(ct)
                    .map_err(|_| KeystoreError::Format("ciphertext is not hex".into()))?;
                let sym = derive_key(password, kdf)?;
                let cipher = XChaCha20Poly1305::new(sym.as_ref().into());
                let plain = Zeroizing::new(
                    cipher
                        .decrypt(
                            XNonce::from_slice(&nonce),
                            Payload {
                                msg: &ct,
                                aad: &self.public_key.0,
                            },
                        )
                        .map_err(|_| KeystoreError::Decrypt)?,
                );
                let arr: [u8; 32] = plain
                    .as_slice()
                    .try_into()
                    .map_err(|_| KeystoreError::Format("secret has the wrong length".into()))?;
                Zeroizing::new(arr)
            }
            KIND_PLAINTEXT => {
                let s = self
                    .secret_key
                    .as_deref()
                    .ok_or_else(|| KeystoreError::Format("missing secret_key".into()))?;
                Zeroizing::new(hex_exact::<32>(s, "secret_key")?)
            }
            other => {
                return Err(KeystoreError::Format(format!("unknown kind {other:?}")));
            }
        };
        let key = KeyPair::from_secret_bytes(&secret)
            .map_err(|_| KeystoreError::Format("secret is not a valid key".into()))?;
        if key.public() != self.public_key {
            return Err(KeystoreError::Format(
                "public key does not match the secret".into(),
            ));
        }
        Ok(key)
    }

    /// Reads and parses a key file (does not unlock it).
    pub fn read(path: &Path) -> Result<KeyFile, KeystoreError> {
        let io = |source| KeystoreError::Io {
            path: path.display().to_string(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        if meta.len() > MAX_FILE_LEN {
            return Err(KeystoreError::Format(format!(
                "{} is {} bytes, too large for a key file",
                path.display(),
                meta.len()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        KeyFile::parse(&text)
    }

    /// Parses a key file's text (does not unlock it).
    pub fn parse(text: &str) -> Result<KeyFile, KeystoreError> {
        if text.len() as u64 > MAX_FILE_LEN {
            return Err(KeystoreError::Format(format!(
                "{} bytes, too large for a key file",
                text.len()
            )));
        }
        serde_json::from_str(text).map_err(|e| KeystoreError::Format(e.to_string()))
    }

    /// Writes the file with mode 0600, atomically, refusing to overwrite an existing one: the
    /// key goes to a temporary file in the same directory (created 0600), is fsynced, then
    /// linked into place only if nothing exists there.
    pub fn write_new(&self, path: &Path) -> Result<(), KeystoreError> {
        let io = |source| KeystoreError::Io {
            path: path.display().to_string(),
            source,
        };
        if path.exists() {
            return Err(KeystoreError::Exists(path.display().to_string()));
        }
        let json =
            serde_json::to_vec_pretty(self).map_err(|e| KeystoreError::Format(e.to_string()))?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        tmp.write_all(&json).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist_noclobber(path).map_err(|e| {
            if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                KeystoreError::Exists(path.display().to_string())
            } else {
                io(e.error)
            }
        })?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

fn hex_exact<const N: usize>(s: &str, what: &str) -> Result<[u8; N], KeystoreError> {
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out)
        .map_err(|_| KeystoreError::Format(format!("{what} must be {} hex characters", N * 2)))?;
    Ok(out)
}

fn derive_key(password: &[u8], kdf: &KdfParams) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
    if kdf.name != "scrypt" {
        return Err(KeystoreError::Format(format!("unknown kdf {:?}", kdf.name)));
    }
    if kdf.log_n > MAX_SCRYPT_LOG_N || kdf.r == 0 || kdf.r > 32 || kdf.p == 0 || kdf.p > 16 {
        return Err(KeystoreError::Format(
            "scrypt parameters out of the accepted range".into(),
        ));
    }
    let salt = hex_exact::<16>(&kdf.salt, "salt")?;
    let params = scrypt::Params::new(kdf.log_n, kdf.r, kdf.p, 32)
        .map_err(|e| KeystoreError::Format(format!("scrypt parameters: {e}")))?;
    let mut out = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(password, &salt, &params, out.as_mut())
        .map_err(|e| KeystoreError::Format(format!("scrypt: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn encrypted_roundtrip_permissions_and_tamper() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");
        let kp = KeyPair::generate();
        let file = KeyFile::encrypt(&kp, b"hunter2", 10).unwrap();
        file.write_new(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(matches!(
            file.write_new(&path),
            Err(KeystoreError::Exists(_))
        ));

        let read = KeyFile::read(&path).unwrap();
        assert_eq!(read.unlock(Some(b"hunter2")).unwrap().public(), kp.public());
        assert!(matches!(
            read.unlock(Some(b"wrong")),
            Err(KeystoreError::Decrypt)
        ));
        assert!(matches!(
            read.unlock(None),
            Err(KeystoreError::PasswordRequired)
        ));

        let mut edited = read.clone();
        edited.public_key = KeyPair::generate().public();
        assert!(matches!(
            edited.unlock(Some(b"hunter2")),
            Err(KeystoreError::Decrypt)
        ));
    }

    #[test]
    fn plaintext_devnet_roundtrip() {
        let kp = KeyPair::generate();
        let file = KeyFile::plaintext_devnet(&kp);
        assert!(!file.is_encrypted());
        assert_eq!(file.unlock(None).unwrap().public(), kp.public());
    }

    #[test]
    fn refuses_hostile_parameters() {
        let kp = KeyPair::generate();
        let mut file = KeyFile::encrypt(&kp, b"pw", 10).unwrap();
        if let Some(k) = file.kdf.as_mut() {
            k.log_n = 40;
        }
        assert!(matches!(
            file.unlock(Some(b"pw")),
            Err(KeystoreError::Format(_))
        ));
    }
}
