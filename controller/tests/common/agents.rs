//! What the leading master and Marathon say about agents and their tasks, for the agent pool
//! tests (built on [`super::leading_master_agents`] and [`super::marathon_get`]).

use std::collections::BTreeMap;

use kube::Client;
use mesos_operator::mesos::operator_api::Agent;

/// The agents the leading master lists, by host name.
pub async fn registered(
    client: &Client,
    http: &reqwest::Client,
    ns: &str,
) -> BTreeMap<String, Vec<Agent>> {
    let mut out: BTreeMap<String, Vec<Agent>> = BTreeMap::new();
    for a in super::leading_master_agents(client, http, ns)
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
    let path = format!("/v2/apps/{ns}/{id}?embed=apps.tasks");
    Ok(super::marathon_get(client, http, ns, &path).await?["app"].clone())
}
