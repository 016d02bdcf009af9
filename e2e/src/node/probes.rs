//! Readiness and liveness probes, run for real: exec inside the container's namespaces,
//! httpGet (HTTP or HTTPS) and tcpSocket from the host to the pod's address over the
//! bridge (as a kubelet does), so a pod cut off the network fails them.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ContainerPort, HTTPHeader, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Where a probe runs.
pub struct Target<'a> {
    pub pod_ip: Ipv4Addr,
    pub pid: u32,
    pub ports: &'a [ContainerPort],
    pub env: &'a [(String, String)],
}

/// Runs `probe` once. `Err` carries the failure message Kubernetes would report.
pub async fn run(probe: &Probe, target: &Target<'_>) -> Result<(), String> {
    let timeout = Duration::from_secs(probe.timeout_seconds.unwrap_or(1).max(1) as u64);
    let attempt = async {
        if let Some(exec) = &probe.exec {
            let argv = exec.command.clone().unwrap_or_default();
            let mut cmd = super::sandbox::exec_command(target.pid, &argv);
            cmd.env_clear().envs(target.env.iter().cloned());
            let out = cmd.output().await.map_err(|e| format!("exec probe: {e}"))?;
            if out.status.success() {
                return Ok(());
            }
            let text = String::from_utf8_lossy(&[out.stdout, out.stderr].concat()).into_owned();
            return Err(format!(
                "exec probe {argv:?} failed ({}): {}",
                out.status,
                text.trim()
            ));
        }
        if let Some(http) = &probe.http_get {
            let host = http
                .host
                .clone()
                .unwrap_or_else(|| target.pod_ip.to_string());
            let port = resolve_port(&http.port, target.ports)?;
            let get = Get {
                https: http.scheme.as_deref() == Some("HTTPS"),
                host: &host,
                port,
                path: http.path.as_deref().unwrap_or("/"),
                headers: http.http_headers.as_deref().unwrap_or_default(),
            };
            return get.run().await;
        }
        if let Some(tcp) = &probe.tcp_socket {
            let host = tcp
                .host
                .clone()
                .unwrap_or_else(|| target.pod_ip.to_string());
            let port = resolve_port(&tcp.port, target.ports)?;
            return TcpStream::connect((host.as_str(), port))
                .await
                .map(drop)
                .map_err(|e| format!("dial tcp {host}:{port}: {e}"));
        }
        Err("probe has no handler (exec, httpGet or tcpSocket)".to_string())
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or_else(|_| Err(format!("probe timed out after {}s", timeout.as_secs())))
}

fn resolve_port(port: &IntOrString, ports: &[ContainerPort]) -> Result<u16, String> {
    match port {
        IntOrString::Int(p) => u16::try_from(*p).map_err(|_| format!("invalid port {p}")),
        IntOrString::String(name) => ports
            .iter()
            .find(|p| p.name.as_deref() == Some(name))
            .and_then(|p| u16::try_from(p.container_port).ok())
            .ok_or_else(|| format!("no container port named {name:?}")),
    }
}

/// A probe's HTTP/1.1 GET; 200-399 is success.
struct Get<'a> {
    /// `scheme: HTTPS`: TLS without verifying the certificate, as the kubelet does.
    https: bool,
    host: &'a str,
    port: u16,
    path: &'a str,
    /// `httpHeaders`: they replace the kubelet's defaults of the same name.
    headers: &'a [HTTPHeader],
}

impl Get<'_> {
    async fn run(&self) -> Result<(), String> {
        let (host, port, path) = (self.host, self.port, self.path);
        let url = format!(
            "{}://{host}:{port}{path}",
            if self.https { "https" } else { "http" }
        );
        let tcp = TcpStream::connect((host, port))
            .await
            .map_err(|e| format!("Get \"{url}\": {e}"))?;
        let code = if self.https {
            let name = ServerName::try_from(host.to_string())
                .map_err(|e| format!("Get \"{url}\": {e}"))?;
            let tls = tokio_rustls::TlsConnector::from(insecure_tls()?)
                .connect(name, tcp)
                .await
                .map_err(|e| format!("Get \"{url}\": {e}"))?;
            self.exchange(tls).await?
        } else {
            self.exchange(tcp).await?
        };
        if (200..400).contains(&code) {
            Ok(())
        } else {
            Err(format!("HTTP probe failed with statuscode: {code}"))
        }
    }

    /// Sends the request on `stream`; returns the status code.
    async fn exchange(
        &self,
        mut stream: impl AsyncRead + AsyncWrite + Unpin,
    ) -> Result<u16, String> {
        let defaults = [
            ("Host", format!("{}:{}", self.host, self.port)),
            ("User-Agent", "kube-probe/1.37".to_string()),
            ("Accept", "*/*".to_string()),
        ];
        let mut request = format!("GET {} HTTP/1.1\r\n", self.path);
        for (name, value) in defaults {
            if !self
                .headers
                .iter()
                .any(|h| h.name.eq_ignore_ascii_case(name))
            {
                request.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        for h in self.headers {
            request.push_str(&format!("{}: {}\r\n", h.name, h.value));
        }
        request.push_str("Connection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("http probe write: {e}"))?;
        let mut head = vec![0u8; 256];
        let n = stream
            .read(&mut head)
            .await
            .map_err(|e| format!("http probe read: {e}"))?;
        let line = String::from_utf8_lossy(&head[..n]);
        line.split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("http probe: malformed response {:?}", line.lines().next()))
    }
}

/// The kubelet's `InsecureSkipVerify`: any certificate and name, while the handshake's
/// signatures are still checked against the presented key.
fn insecure_tls() -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("https probe: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(SkipVerify(provider)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[derive(Debug)]
struct SkipVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for SkipVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn http_and_tcp_probes_see_real_servers() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 512];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let ok = String::from_utf8_lossy(&buf[..n]).starts_with("GET /ok ");
                let status = if ok {
                    "200 OK"
                } else {
                    "503 Service Unavailable"
                };
                let _ = s
                    .write_all(format!("HTTP/1.1 {status}\r\n\r\n").as_bytes())
                    .await;
            }
        });
        let target = Target {
            pod_ip: Ipv4Addr::LOCALHOST,
            pid: 0,
            ports: &[],
            env: &[],
        };
        let probe = |path: &str, port: u16| -> Probe {
            serde_json::from_value(serde_json::json!({"httpGet": {"path": path, "port": port}}))
                .unwrap()
        };
        assert_eq!(run(&probe("/ok", port), &target).await, Ok(()));
        let err = run(&probe("/bad", port), &target).await.unwrap_err();
        assert!(err.contains("statuscode: 503"), "{err}");
        let tcp: Probe =
            serde_json::from_value(serde_json::json!({"tcpSocket": {"port": port}})).unwrap();
        assert_eq!(run(&tcp, &target).await, Ok(()));
        let closed = crate::ports::free_port();
        let tcp: Probe =
            serde_json::from_value(serde_json::json!({"tcpSocket": {"port": closed}})).unwrap();
        assert!(run(&tcp, &target).await.is_err());
        // A plain HTTP server does not speak TLS.
        let https = |path: &str, port: u16| -> Probe {
            serde_json::from_value(
                serde_json::json!({"httpGet": {"path": path, "port": port, "scheme": "HTTPS"}}),
            )
            .unwrap()
        };
        assert!(run(&https("/ok", port), &target).await.is_err());
    }

    /// A self-signed server answering 200 only to `X-Probe: yes`, 403 otherwise.
    async fn tls_server() -> u16 {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["elsewhere.example".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let Ok(mut s) = acceptor.accept(tcp).await else {
                    continue;
                };
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).to_lowercase();
                let status = if request.contains("\r\nx-probe: yes\r\n") {
                    "200 OK"
                } else {
                    "403 Forbidden"
                };
                let _ = s
                    .write_all(format!("HTTP/1.1 {status}\r\n\r\n").as_bytes())
                    .await;
                let _ = s.shutdown().await;
            }
        });
        port
    }

    #[tokio::test]
    async fn https_probe_skips_verification_and_sends_headers() {
        let port = tls_server().await;
        let target = Target {
            pod_ip: Ipv4Addr::LOCALHOST,
            pid: 0,
            ports: &[],
            env: &[],
        };
        let probe = |headers: serde_json::Value| -> Probe {
            serde_json::from_value(serde_json::json!({"httpGet": {
                "path": "/ping", "port": port, "scheme": "HTTPS", "httpHeaders": headers}}))
            .unwrap()
        };
        let with_header = probe(serde_json::json!([{"name": "X-Probe", "value": "yes"}]));
        assert_eq!(run(&with_header, &target).await, Ok(()));
        let err = run(&probe(serde_json::json!([])), &target)
            .await
            .unwrap_err();
        assert!(err.contains("statuscode: 403"), "{err}");
        // Over plain HTTP the TLS server answers nothing a probe accepts.
        let plain: Probe = serde_json::from_value(serde_json::json!({"httpGet": {
            "path": "/ping", "port": port, "httpHeaders": [{"name": "X-Probe", "value": "yes"}]}}))
        .unwrap();
        assert!(run(&plain, &target).await.is_err());
    }
}
