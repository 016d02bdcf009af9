//! Marathon's keystore (`--ssl_keystore_path`), read as PKCS12: the format cert-manager
//! writes (`keystore.p12`), `openssl pkcs12 -export` makes and Java 9+ loads by default.
//! Other Java keystore formats (JKS) are not supported.

use std::path::Path;

use p12_keystore::{KeyStore, KeyStoreEntry, Pkcs12ImportPolicy};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    #[error("Failed to load the keystore {0}: {1}")]
    Read(String, std::io::Error),
    /// Java's `KeyStore.load` wording for a MAC that does not verify.
    #[error("Failed to load the keystore {0}: keystore password was incorrect")]
    Password(String),
    #[error("Failed to load the keystore {0}: {1} (only PKCS12 keystores are supported)")]
    Invalid(String, p12_keystore::error::Error),
    #[error("The keystore {0} holds no private key entry with a certificate")]
    NoKey(String),
}

/// What Marathon uses from its keystore.
#[derive(Debug)]
pub struct Keystore {
    /// The first private key entry's certificate chain, which Jetty presents.
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// What Java's `TrustManagerFactory.init(keystore)` trusts (`TrustStoreUtil`): the
    /// first certificate of every key entry and the trusted certificate entries (in
    /// PKCS12 only bags with Oracle's trusted-key-usage attribute; a CA certificate
    /// bundled by `openssl pkcs12 -export -certfile` is part of a chain, not trusted).
    pub trusted: Vec<CertificateDer<'static>>,
}

impl Keystore {
    pub fn load(path: &Path, password: &str) -> Result<Keystore, KeystoreError> {
        let name = path.display().to_string();
        let data = std::fs::read(path).map_err(|e| KeystoreError::Read(name.clone(), e))?;
        // Strict is Java's import: key entries with their chains, trusted certificates.
        let store = KeyStore::from_pkcs12(&data, password, Pkcs12ImportPolicy::Strict).map_err(
            |e| match e {
                p12_keystore::error::Error::MacError(_) => KeystoreError::Password(name.clone()),
                other => KeystoreError::Invalid(name.clone(), other),
            },
        )?;
        let der = |c: &p12_keystore::Certificate| CertificateDer::from(c.as_der().to_vec());
        let mut trusted = Vec::new();
        for (_, entry) in store.entries() {
            match entry {
                KeyStoreEntry::PrivateKeyChain(chain) => {
                    trusted.extend(chain.certs().first().map(der))
                }
                KeyStoreEntry::Certificate(cert) => trusted.push(der(cert)),
                KeyStoreEntry::Secret(_) => {}
            }
        }
        let (_, chain) = store
            .private_key_chain()
            .filter(|(_, c)| !c.certs().is_empty())
            .ok_or_else(|| KeystoreError::NoKey(name.clone()))?;
        Ok(Keystore {
            chain: chain.certs().iter().map(der).collect(),
            key: PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec()).into(),
            trusted,
        })
    }
}
