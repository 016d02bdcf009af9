//! What the leading master says about agents, for the agent pool tests.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client};
use mesos_operator::controllers::cluster::masters;
use mesos_operator::mesos::operator_api::{self, Agent, OperatorApi};

/// The leading master's address, from the master Pods in `ns`.
pub async fn leader(client: &Client, http: &reqwest::Client, ns: &str) -> String {
    let pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels("mesos.operator.dev/role=master"))
        .await
        .expect("master pods");
    let addrs: Vec<String> = pods
        .items
        .iter()
        .filter_map(|p| p.status.as_ref()?.pod_ip.clone())
        .map(|ip| format!("{ip}:{}", masters::PORT))
        .collect();
    operator_api::leader(http, &addrs).await.expect("a leader")
}

/// The agents the leading master lists, by host name.
pub async fn registered(
    client: &Client,
    http: &reqwest::Client,
    ns: &str,
) -> BTreeMap<String, Vec<Agent>> {
    let addr = leader(client, http, ns).await;
    let mut out: BTreeMap<String, Vec<Agent>> = BTreeMap::new();
    for a in OperatorApi::new(http, addr)
        .get_agents()
        .await
        .expect("GET_AGENTS")
    {
        out.entry(a.hostname.clone()).or_default().push(a);
    }
    out
}

/// The Marathon app `/<ns>/<id>` with its tasks, as the first Marathon server reports it.
pub async fn marathon_app(
    client: &Client,
    http: &reqwest::Client,
    ns: &str,
    id: &str,
) -> Result<serde_json::Value, String> {
    let pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels("mesos.operator.dev/role=marathon"))
        .await
        .map_err(|e| e.to_string())?;
    let ip = pods
        .items
        .first()
        .and_then(|p| p.status.as_ref()?.pod_ip.clone())
        .ok_or("no Marathon pod with an IP")?;
    let answer: serde_json::Value = http
        .get(format!(
            "http://{ip}:8080/v2/apps/{ns}/{id}?embed=apps.tasks"
        ))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    Ok(answer["app"].clone())
}
