//! The operator's outbound HTTP clients. reqwest is built with `rustls-no-provider`, so every
//! client gets its TLS configuration from here, on kube's crypto provider (ring): one provider
//! in the binary, and no process-wide default that a library could race to install.
//!
//! `reqwest::Client::new()` panics in this workspace (no provider); use [`plain_client`].

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("no PEM certificate in {what}")]
    NoCertificate { what: String },
    #[error("{what} holds an invalid certificate: {message}")]
    BadCertificate { what: String, message: String },
    #[error("building the HTTPS client: {0}")]
    Client(#[from] reqwest::Error),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn config(roots: rustls::RootCertStore) -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// A client for plain HTTP (the masters, the agents, an HTTP-only Marathon). It trusts no
/// certificate, so it can never be pointed at an HTTPS server by mistake and succeed.
pub fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(config(rustls::RootCertStore::empty()))
        .build()
        .expect("a client without proxies or custom resolvers always builds")
}

/// A client that trusts only the CA certificates in `ca_pem` (from `what`, for errors) and
/// resolves each `(host name, address)` to that address, so that a server reached at its Pod
/// IP is verified by the name its certificate carries.
pub fn client_trusting(
    what: &str,
    ca_pem: &[u8],
    names: &[(String, SocketAddr)],
) -> Result<reqwest::Client, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|e| TlsError::BadCertificate {
            what: what.into(),
            message: e.to_string(),
        })?;
        roots.add(cert).map_err(|e| TlsError::BadCertificate {
            what: what.into(),
            message: e.to_string(),
        })?;
    }
    if roots.is_empty() {
        return Err(TlsError::NoCertificate { what: what.into() });
    }
    let builder = names.iter().fold(
        reqwest::Client::builder().tls_backend_preconfigured(config(roots)),
        |b, (name, addr)| b.resolve(name, *addr),
    );
    Ok(builder.build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed CA certificate (made once with `openssl req -x509`; its key is not kept).
    const CA: &[u8] = include_bytes!("tls_test_ca.pem");

    #[test]
    fn a_client_trusts_exactly_the_given_ca() {
        let addr: SocketAddr = "10.0.0.7:8443".parse().unwrap();
        let names = [("m-0.m.ns.svc.cluster.local".to_string(), addr)];
        assert!(client_trusting("ca.crt", CA, &names).is_ok());
        match client_trusting("ca.crt", b"not a certificate", &names) {
            Err(TlsError::NoCertificate { what }) => assert_eq!(what, "ca.crt"),
            other => panic!("{other:?}"),
        }
        let mangled = String::from_utf8_lossy(CA).replace("MII", "MIX");
        assert!(matches!(
            client_trusting("ca.crt", mangled.as_bytes(), &names),
            Err(TlsError::BadCertificate { .. })
        ));
    }
}
