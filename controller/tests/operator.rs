//! The operator binary against a real kube-apiserver: verdicts become conditions and Events,
//! resyncs write nothing, and a standby takes over when the leader dies.

use std::process::Command;
use std::time::{Duration, Instant};

use e2e::ControlPlane;
use e2e::process::Supervised;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use mesos_operator::crd::MesosCluster;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;
use common::eventually;

async fn control_plane() -> ControlPlane {
    ControlPlane::start()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Starts `mesos-operator run` as `identity`, serving metrics on a free loopback port.
fn operator(cp: &ControlPlane, identity: &str) -> (Supervised, u16) {
    let port = e2e::ports::free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mesos-operator"));
    cmd.args(["run", "--metrics-addr", &format!("127.0.0.1:{port}")])
        .env("KUBECONFIG", cp.kubeconfig())
        .env("POD_NAMESPACE", "default")
        .env("POD_NAME", identity)
        .env("RUST_LOG", "info");
    let log = cp.dir().join(format!("{identity}.log"));
    (
        Supervised::spawn(identity, cmd, &log).expect("start the operator"),
        port,
    )
}

async fn create(client: &Client, manifest: serde_json::Value) {
    let mc: MesosCluster = serde_json::from_value(manifest).expect("manifest");
    Api::<MesosCluster>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &mc)
        .await
        .expect("create MesosCluster");
}

/// Waits until `name` has an `Accepted` condition with `status` for its current generation,
/// and returns the object.
async fn verdict(client: &Client, name: &str, status: &str) -> MesosCluster {
    let api = Api::<MesosCluster>::namespaced(client.clone(), "default");
    eventually(
        &format!("{name} Accepted={status}"),
        Duration::from_secs(30),
        || async {
            let mc = api.get(name).await.map_err(|e| e.to_string())?;
            let s = mc.status.clone().unwrap_or_default();
            let ok = s.observed_generation == mc.metadata.generation
                && s.conditions
                    .iter()
                    .any(|c| c.type_ == "Accepted" && c.status == status);
            if ok { Ok(mc) } else { Err(format!("{s:?}")) }
        },
    )
    .await
}

async fn events_for(client: &Client, name: &str) -> Vec<Event> {
    let events = Api::<Event>::namespaced(client.clone(), "default");
    let selector = format!("regarding.name={name}");
    events
        .list(&ListParams::default().fields(&selector))
        .await
        .expect("list events")
        .items
}

async fn http_get(port: u16, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to metrics");
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .expect("send");
    let mut body = String::new();
    s.read_to_string(&mut body).await.expect("read");
    body
}

fn log_tail(op: &Supervised) -> String {
    e2e::process::log_tail(op.log_path(), 30)
}

#[tokio::test(flavor = "multi_thread")]
async fn verdicts_become_conditions_and_events_and_resyncs_write_nothing() {
    let cp = control_plane().await;
    let client = cp.client();
    let (op, port) = operator(&cp, "op-a");

    let base = |name: &str, spec: serde_json::Value| json!({"apiVersion": "mesos.operator.dev/v1alpha1", "kind": "MesosCluster", "metadata": {"name": name}, "spec": spec});
    create(&client, base("prod", json!({}))).await;
    // Admitted by the apiserver (CEL does not look at values), rejected by the Rust validation.
    create(
        &client,
        base(
            "bad",
            json!({"masters": {"extraFlags": {"offer_timeout": ""}}}),
        ),
    )
    .await;

    // Valid: accepted, and (no nodes here) waiting for its first members to run.
    let prod = verdict(&client, "prod", "True").await;
    assert_eq!(
        prod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Progressing"),
        "{}",
        log_tail(&op)
    );
    let bad = verdict(&client, "bad", "False").await;
    let status = bad.status.expect("status");
    assert_eq!(status.phase.as_deref(), Some("Invalid"));
    let message = &status.conditions[0].message;
    assert!(
        message.starts_with(
            "spec.masters.extraFlags[offer_timeout]: extraFlags values must be non-empty"
        ),
        "{message}"
    );
    let warnings = events_for(&client, "bad").await;
    assert!(
        warnings.iter().any(
            |e| e.type_.as_deref() == Some("Warning") && e.reason.as_deref() == Some("Invalid")
        ),
        "no Warning/Invalid event: {warnings:?}"
    );

    // Nothing changed, so nothing is written. With no nodes the cluster settles waiting for its
    // first server to run; the reconciler keeps passing every 2 s and must not write.
    let api = Api::<MesosCluster>::namespaced(client.clone(), "default");
    let settled = eventually(
        "prod to settle on a wait",
        Duration::from_secs(30),
        || async {
            let mc = api.get("prod").await.map_err(|e| e.to_string())?;
            let s = mc.status.clone().unwrap_or_default();
            let waiting = s
                .conditions
                .iter()
                .any(|c| c.type_ == "Progressing" && c.message.starts_with("Waiting"));
            if waiting {
                Ok(mc)
            } else {
                Err(format!("{:?}", s.conditions))
            }
        },
    )
    .await;
    let before = settled.metadata.resource_version.clone();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        api.get("prod")
            .await
            .expect("get")
            .metadata
            .resource_version,
        before,
        "status rewritten without a change"
    );

    // Fixing the spec flips the verdict for the new generation and says so in an Event.
    api.patch(
        "bad",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"masters": {"extraFlags": {"offer_timeout": "5mins"}}}})),
    )
    .await
    .expect("fix the spec");
    let fixed = verdict(&client, "bad", "True").await;
    assert_eq!(fixed.status.and_then(|s| s.observed_generation), Some(2));
    let events = events_for(&client, "bad").await;
    assert!(
        events.iter().any(|e| e.reason.as_deref() == Some("Valid")),
        "no Valid event after the fix: {events:?}"
    );

    let metrics = http_get(port, "/metrics").await;
    assert!(
        metrics.contains(
            r#"mesos_operator_spec_verdicts_total{controller="mesoscluster",verdict="Invalid"}"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"mesos_operator_reconciliations_total{controller="mesoscluster"}"#),
        "{metrics}"
    );
    assert!(http_get(port, "/readyz").await.ends_with("ok"));
}

async fn holder(client: &Client) -> Result<String, String> {
    let leases = Api::<Lease>::namespaced(client.clone(), "default");
    let lease = leases
        .get("mesos-operator-leader")
        .await
        .map_err(|e| e.to_string())?;
    lease
        .spec
        .and_then(|s| s.holder_identity)
        .ok_or_else(|| "no holder".to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_standby_takes_over_only_when_the_leader_dies() {
    let cp = control_plane().await;
    let client = cp.client();
    let (leader, _) = operator(&cp, "op-a");
    eventually("op-a to lead", Duration::from_secs(30), || async {
        holder(&client)
            .await
            .and_then(|h| if h == "op-a" { Ok(()) } else { Err(h) })
    })
    .await;
    let (standby, _) = operator(&cp, "op-b");
    let manifest = |name: &str| json!({"apiVersion": "mesos.operator.dev/v1alpha1", "kind": "MesosCluster", "metadata": {"name": name}, "spec": {}});
    create(&client, manifest("before")).await;
    verdict(&client, "before", "True").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        holder(&client).await.as_deref(),
        Ok("op-a"),
        "the standby took a live lease: {}",
        log_tail(&standby)
    );
    let instances: Vec<_> = events_for(&client, "before")
        .await
        .into_iter()
        .filter_map(|e| e.reporting_instance)
        .collect();
    assert!(
        !instances.is_empty() && instances.iter().all(|i| i == "op-a"),
        "only the leader may act: {instances:?}"
    );

    // SIGKILL: no release, so the standby must wait out the lease (15 s) and then act.
    e2e::process::signal_group(leader.pid(), libc::SIGKILL);
    let killed_at = Instant::now();
    create(&client, manifest("after")).await;
    verdict(&client, "after", "True").await;
    let took = killed_at.elapsed();
    assert_eq!(holder(&client).await.as_deref(), Ok("op-b"));
    let instances: Vec<_> = events_for(&client, "after")
        .await
        .into_iter()
        .filter_map(|e| e.reporting_instance)
        .collect();
    assert!(
        !instances.is_empty() && instances.iter().all(|i| i == "op-b"),
        "only the new leader may act: {instances:?}"
    );
    assert!(
        took >= Duration::from_secs(10),
        "took over after {took:?}, before the lease could expire"
    );
    eprintln!("standby took over {took:?} after the leader was killed");
    drop(standby);
}
