//! Marathon's HTTPS: the connector serving the API from the keystore
//! (`api/HttpModule.scala`), and the trust a standby uses when it proxies to the leader
//! over HTTPS (`io/SSLContextUtil.scala`, `api/forwarder/AsyncUrlConnectionRequestForwarder.scala`).
//! rustls runs with the ring provider, chosen per config.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, ring};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    ClientConfig, DigitallySignedStruct, Error, RootCertStore, ServerConfig, SignatureScheme,
};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::keystore::Keystore;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// The HTTPS connector's TLS: the keystore's key and chain, HTTP/1.1 only (Jetty's
/// `SslConnectionFactory(…, HTTP_1_1)`).
pub fn acceptor(keystore: &Keystore) -> Result<TlsAcceptor, Error> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(keystore.chain.clone(), keystore.key.clone_key())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `app` over TLS on `listener`, one task per connection (a slow handshake does
/// not hold up the others). Returns only if accepting fails for good.
pub async fn serve(listener: TcpListener, acceptor: TlsAcceptor, app: Router) -> std::io::Error {
    loop {
        let tcp = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) if is_transient(&e) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(e) => return e,
        };
        let acceptor = acceptor.clone();
        let (tcp, peer) = tcp;
        // What `into_make_service_with_connect_info` gives the plain listener.
        let app = app
            .clone()
            .layer(axum::Extension(axum::extract::ConnectInfo(peer)));
        let service = TowerToHyperService::new(app);
        tokio::spawn(async move {
            let tls =
                match tokio::time::timeout(Duration::from_secs(30), acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => return tracing::debug!("TLS handshake failed: {e}"),
                    Err(_) => return tracing::debug!("TLS handshake timed out"),
                };
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await
            {
                tracing::debug!("HTTPS connection ended: {e}");
            }
        });
    }
}

/// Accept errors that concern one connection or a momentary shortage (as axum's
/// `serve` treats them), not the listener.
fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset | Interrupted
    ) || e.raw_os_error() == Some(libc::EMFILE)
        || e.raw_os_error() == Some(libc::ENFILE)
}

/// The standby's TLS towards the leader: trusts what Java trusts in the own keystore
/// (the JVM's system trust store, Marathon's fallback, is left out: the simulator only
/// ever talks to peers with the cluster's certificate).
pub fn proxy_client_config(
    trusted: &[CertificateDer<'static>],
    check_hostname: bool,
) -> Result<ClientConfig, Error> {
    let provider = provider();
    let mut roots = RootCertStore::empty();
    for cert in trusted {
        // A certificate webpki cannot use as an anchor still counts when presented itself.
        let _ = roots.add(cert.clone());
    }
    let verifier = KeystoreTrust {
        trusted: trusted.to_vec(),
        roots,
        check_hostname,
        algorithms: provider.signature_verification_algorithms,
    };
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// Java's PKIX trust over a keystore: a presented end-entity certificate that is itself
/// trusted is accepted as is (`PKIXValidator`), anything else must chain to a trusted
/// certificate; the host name is checked unless `--leader_proxy_ssl_ignore_hostname`.
#[derive(Debug)]
struct KeystoreTrust {
    trusted: Vec<CertificateDer<'static>>,
    roots: RootCertStore,
    check_hostname: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for KeystoreTrust {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        if !self
            .trusted
            .iter()
            .any(|t| t.as_ref() == end_entity.as_ref())
        {
            verify_server_cert_signed_by_trust_anchor(
                &cert,
                &self.roots,
                intermediates,
                now,
                self.algorithms.all,
            )?;
        }
        if self.check_hostname {
            verify_server_name(&cert, server_name)?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
