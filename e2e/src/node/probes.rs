//! Readiness and liveness probes, run for real: exec inside the container's namespaces,
//! httpGet and tcpSocket from the host to the pod's address over the bridge (as a kubelet
//! does), so a pod cut off the network fails them.

use std::net::Ipv4Addr;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ContainerPort, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
            let path = http.path.clone().unwrap_or_else(|| "/".into());
            return http_get(&host, port, &path).await;
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

/// A minimal HTTP/1.1 GET; 200-399 is success.
async fn http_get(host: &str, port: u16, path: &str) -> Result<(), String> {
    let mut stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("Get \"http://{host}:{port}{path}\": {e}"))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.37\r\nConnection: close\r\n\r\n"
    );
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
    let code: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("http probe: malformed response {:?}", line.lines().next()))?;
    if (200..400).contains(&code) {
        Ok(())
    } else {
        Err(format!("HTTP probe failed with statuscode: {code}"))
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
    }
}
