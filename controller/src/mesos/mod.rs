//! What a Mesos master says about itself at `/metrics/snapshot`, as the observe stage needs it.
//! A key the master did not report (Mesos drops keys that time out) counts as "no": a master is
//! never taken for recovered or elected on missing evidence.

pub mod operator_api;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::quorum::Health;

/// The metrics that gate membership steps.
#[derive(Clone, Debug, PartialEq)]
pub struct MasterMetrics {
    /// `master/elected`: this master leads.
    pub elected: bool,
    /// `registrar/log/recovered`: its replica has caught up and votes.
    pub recovered: bool,
    /// `registrar/log/ensemble_size`: replicas it talks to, itself included.
    pub ensemble_size: Option<u32>,
    /// `sim/safety_violations`, reported by the simulator only.
    pub safety_violations: Option<u32>,
}

impl MasterMetrics {
    pub fn from_snapshot(snapshot: &BTreeMap<String, f64>) -> Self {
        let flag = |k: &str| snapshot.get(k).is_some_and(|v| *v >= 1.0);
        let count = |k: &str| snapshot.get(k).map(|v| *v as u32);
        Self {
            elected: flag("master/elected"),
            recovered: flag("registrar/log/recovered"),
            ensemble_size: count("registrar/log/ensemble_size"),
            safety_violations: count("sim/safety_violations"),
        }
    }

    /// The planner's view of this master.
    pub fn health(&self) -> Health {
        Health::Serving {
            recovered: self.recovered,
            leader: self.elected,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MesosError {
    #[error("asking {url}: {source}")]
    Request { url: String, source: reqwest::Error },
    #[error("{url} answered {status}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
    },
}

impl MesosError {
    pub fn category(&self) -> &'static str {
        match self {
            MesosError::Request { source, .. } if source.is_timeout() => "mesos-timeout",
            MesosError::Request { .. } => "mesos-unreachable",
            MesosError::Status { .. } => "mesos-status",
        }
    }
}

/// `GET http://<addr>/metrics/snapshot`, within `timeout`.
pub async fn master_metrics(
    client: &reqwest::Client,
    addr: &str,
    timeout: Duration,
) -> Result<MasterMetrics, MesosError> {
    let url = format!("http://{addr}/metrics/snapshot");
    let request = |source| MesosError::Request {
        url: url.clone(),
        source,
    };
    let response = client
        .get(&url)
        .timeout(timeout)
        .send()
        .await
        .map_err(request)?;
    if !response.status().is_success() {
        return Err(MesosError::Status {
            url,
            status: response.status(),
        });
    }
    let snapshot: BTreeMap<String, f64> = response.json().await.map_err(request)?;
    Ok(MasterMetrics::from_snapshot(&snapshot))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_keys_are_no_evidence() {
        let full = BTreeMap::from([
            ("master/elected".to_string(), 1.0),
            ("registrar/log/recovered".to_string(), 1.0),
            ("registrar/log/ensemble_size".to_string(), 3.0),
        ]);
        let m = MasterMetrics::from_snapshot(&full);
        assert_eq!(
            m.health(),
            Health::Serving {
                recovered: true,
                leader: true
            }
        );
        assert_eq!(m.ensemble_size, Some(3));
        let partial = BTreeMap::from([("master/elected".to_string(), 0.0)]);
        let m = MasterMetrics::from_snapshot(&partial);
        assert_eq!(
            m.health(),
            Health::Serving {
                recovered: false,
                leader: false
            }
        );
        assert!(!m.health().healthy());
    }

    #[tokio::test]
    async fn an_unreachable_master_is_an_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let err = master_metrics(&crate::tls::plain_client(), &addr, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(err.category(), "mesos-unreachable");
    }
}
