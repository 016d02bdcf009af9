//! Health checks really run against the task (`docs/docs/health-checks.md`):
//! HTTP(S)/MESOS_HTTP(S) expect a 200–399 answer, TCP/MESOS_TCP a connection, COMMAND
//! an exit code 0 (run by the simulator, not inside the task's sandbox), each within
//! `timeoutSeconds`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::http_client::HttpClient;

/// Per-task result bookkeeping (`healthCheckResults[]`).
#[derive(Clone, Debug, Default)]
pub struct HealthState {
    pub alive: bool,
    pub consecutive_failures: u32,
    pub first_success: Option<String>,
    pub last_success: Option<String>,
    pub last_failure: Option<String>,
    pub last_failure_cause: Option<String>,
    pub last_check: Option<Instant>,
    /// A check is in flight; do not start another.
    pub running: bool,
}

impl HealthState {
    pub fn record(&mut self, result: Result<(), String>, now: &str) {
        self.running = false;
        match result {
            Ok(()) => {
                self.alive = true;
                self.consecutive_failures = 0;
                self.first_success.get_or_insert_with(|| now.to_string());
                self.last_success = Some(now.to_string());
            }
            Err(cause) => {
                self.alive = false;
                self.consecutive_failures += 1;
                self.last_failure = Some(now.to_string());
                self.last_failure_cause = Some(cause);
            }
        }
    }

    pub fn to_json(&self, instance_id: &str) -> Value {
        json!({"alive": self.alive, "consecutiveFailures": self.consecutive_failures,
               "firstSuccess": self.first_success, "lastSuccess": self.last_success,
               "lastFailure": self.last_failure, "lastFailureCause": self.last_failure_cause,
               "instanceId": instance_id})
    }
}

/// Runs one check of `hc` against a task with host `ports`. Mesos-level checks run on
/// the agent and reach the task by the agent's IP; Marathon-level ones use the agent's
/// hostname, as Marathon does.
pub async fn check(
    http: &HttpClient,
    hc: &Value,
    hostname: &str,
    ip: &str,
    ports: &[u64],
) -> Result<(), String> {
    let mesos_level = hc["protocol"]
        .as_str()
        .is_some_and(|p| p.starts_with("MESOS_"));
    let host = if mesos_level { ip } else { hostname };
    let timeout = Duration::from_secs_f64(hc["timeoutSeconds"].as_f64().unwrap_or(20.0));
    let port = hc["port"].as_u64().or_else(|| {
        ports
            .get(hc["portIndex"].as_u64().unwrap_or(0) as usize)
            .copied()
    });
    match hc["protocol"].as_str().unwrap_or("HTTP") {
        "HTTP" | "HTTPS" | "MESOS_HTTP" | "MESOS_HTTPS" => {
            let port = port.ok_or("no port for the health check")?;
            let path = hc["path"].as_str().unwrap_or("/");
            let r = http
                .get(&format!("http://{host}:{port}{path}"), timeout)
                .await
                .map_err(|e| e.to_string())?;
            let code = r.status.as_u16();
            if (200..400).contains(&code) {
                Ok(())
            } else {
                Err(format!("HTTP status {code}"))
            }
        }
        "TCP" | "MESOS_TCP" => {
            let port = port.ok_or("no port for the health check")?;
            match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port as u16)))
                .await
            {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("timed out".into()),
            }
        }
        "COMMAND" => {
            let cmd = hc["command"]["value"].as_str().unwrap_or("false");
            let run = tokio::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(cmd)
                .kill_on_drop(true)
                .status();
            match tokio::time::timeout(timeout, run).await {
                Ok(Ok(s)) if s.success() => Ok(()),
                Ok(Ok(s)) => Err(format!("command exited with {s}")),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("timed out".into()),
            }
        }
        other => Err(format!("unsupported protocol {other}")),
    }
}
