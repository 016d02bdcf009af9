//! Leader fencing end to end: two operator replicas with leader election. The leader is paused
//! (SIGSTOP) mid-grow with a member step in flight, the other replica acquires the Lease and
//! carries on, and the paused one is resumed (SIGCONT): it takes no step after the other
//! acquired (its log, the Events it reports), exits, and the masters end at 5 with
//! `--quorum=3`, one leader and no safety violation.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::jiff::Timestamp;
use kube::api::ListParams;
use kube::{Api, Client};

mod common;
use common::{
    assert_masters_healthy, create_three_masters, eventually, set_masters, settled_master_view,
    start_operator, wait_completed, wait_phase,
};

const NS: &str = "leader";
/// Member steps logged by the executor (taken, and about to be taken).
const STEP_LOGS: &str = "info,mesos_operator::controllers::cluster::execute=debug";

/// The Lease's holder and when it acquired it.
async fn holder(client: &Client) -> Result<(String, Timestamp), String> {
    let lease = Api::<Lease>::namespaced(client.clone(), "default")
        .get("mesos-operator-leader")
        .await
        .map_err(|e| e.to_string())?;
    let spec = lease.spec.unwrap_or_default();
    match (spec.holder_identity, spec.acquire_time) {
        (Some(h), Some(t)) => Ok((h, t.0)),
        other => Err(format!("no holder: {other:?}")),
    }
}

fn log_since(path: &std::path::Path, offset: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.get(offset..).unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leader_paused_mid_grow_takes_no_step_after_the_other_acquires() {
    let (cp, runner, client) = common::cluster_env(NS).await;
    let http = mesos_operator::tls::plain_client();
    let first = start_operator(&cp, "operator-first.log", &[], &["--identity", "first"]);
    create_three_masters(&client, NS).await;
    wait_phase(&client, NS, "Available", "3/3", Duration::from_secs(180)).await;
    // SIGTERM: the first replica releases the Lease.
    drop(first);

    // Replica a leads. Its first pod deletion waits 8 s at a failpoint, so
    // it can be stopped with that step in flight (FAILPOINTS, docs/testing.md).
    let armed = [
        ("RUST_LOG", STEP_LOGS),
        ("FAILPOINTS", "mesoscluster/delete-pod=1*sleep(8000)"),
    ];
    let mut a = start_operator(&cp, "operator-a.log", &armed, &["--identity", "op-a"]);
    eventually("op-a leads", Duration::from_secs(60), || async {
        match holder(&client).await? {
            (h, _) if h == "op-a" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let b = start_operator(
        &cp,
        "operator-b.log",
        &[("RUST_LOG", STEP_LOGS)],
        &["--identity", "op-b"],
    );
    let a_log = a.process.log_path().to_path_buf();
    let b_log = b.process.log_path().to_path_buf();
    eventually("op-b standing by", Duration::from_secs(60), || async {
        let log = log_since(&b_log, 0);
        log.contains("waiting for leadership")
            .then_some(())
            .ok_or_else(|| "not yet".to_string())
    })
    .await;

    set_masters(&client, NS, 5).await;
    eventually(
        "op-a about to delete a pod",
        Duration::from_secs(120),
        || async {
            let log = log_since(&a_log, 0);
            log.lines()
                .any(|l| l.contains("taking a member step") && l.contains("delete-pod"))
                .then_some(())
                .ok_or_else(|| "not yet".to_string())
        },
    )
    .await;
    e2e::process::signal_group(a.process.pid(), libc::SIGSTOP);
    let paused = Instant::now();
    let paused_log = std::fs::read_to_string(&a_log).unwrap_or_default().len();

    let (_, acquired) = eventually("op-b acquires", Duration::from_secs(60), || async {
        match holder(&client).await? {
            (h, t) if h == "op-b" => Ok(((), t)),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let took_over = paused.elapsed();
    eventually(
        "op-b takes a member step",
        Duration::from_secs(120),
        || async {
            let log = log_since(&b_log, 0);
            log.contains("member step taken")
                .then_some(())
                .ok_or_else(|| "not yet".to_string())
        },
    )
    .await;
    e2e::process::signal_group(a.process.pid(), libc::SIGCONT);
    let exited = eventually("op-a exits", Duration::from_secs(30), || {
        let status = a.process.exit_status();
        async move { status.ok_or_else(|| "still running".to_string()) }
    })
    .await;
    let resumed = log_since(&a_log, paused_log);
    eprintln!(
        "op-b acquired {took_over:?} after op-a was paused; op-a after SIGCONT ({exited}):\n{resumed}"
    );
    assert!(!exited.success(), "op-a stops with an error: {resumed}");
    assert!(
        !resumed.contains("member step taken"),
        "op-a took a step after op-b acquired: {resumed}"
    );
    assert!(
        resumed.contains("lost leadership"),
        "op-a says why it stops: {resumed}"
    );
    let late: Vec<String> = Api::<Event>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| e.reporting_instance.as_deref() == Some("op-a"))
        .filter(|e| e.event_time.as_ref().is_some_and(|t| t.0 >= acquired))
        .map(|e| e.note.unwrap_or_default())
        .collect();
    assert!(
        late.is_empty(),
        "op-a reported actions after op-b acquired: {late:#?}"
    );
    // The API server's own record: op-a's writes (its User-Agent names it) before the pause,
    // none received after op-b acquired.
    let (before, after) = writes_by(&cp.audit_log(), "(op-a)", acquired);
    assert!(
        !before.is_empty(),
        "op-a's earlier writes are in the audit log"
    );
    assert!(
        after.is_empty(),
        "op-a's writes received after op-b acquired at {acquired}: {after:#?}"
    );

    wait_completed(&client, NS, 5, None, Duration::from_secs(300)).await;
    assert_masters_healthy(&settled_master_view(&client, &http, NS).await, 5, 3);
    drop(b);
    runner.shutdown().await;
}

/// The member-changing writes (not the Lease) whose User-Agent contains `agent`, from the
/// apiserver's audit log: those received before `since`, and those received at or after it.
fn writes_by(audit: &std::path::Path, agent: &str, since: Timestamp) -> (Vec<String>, Vec<String>) {
    let text = std::fs::read_to_string(audit).expect("the audit log");
    let mut split = (Vec::new(), Vec::new());
    for line in text.lines() {
        let e: serde_json::Value = serde_json::from_str(line).expect("an audit event");
        let field = |p: &str| e.pointer(p).and_then(|v| v.as_str()).unwrap_or_default();
        if !field("/userAgent").contains(agent) || field("/objectRef/resource") == "leases" {
            continue;
        }
        let received: Timestamp = field("/requestReceivedTimestamp")
            .parse()
            .expect("a timestamp");
        let write = format!(
            "{received} {} {}/{}/{} -> {}",
            field("/verb"),
            field("/objectRef/resource"),
            field("/objectRef/name"),
            field("/objectRef/subresource"),
            e.pointer("/responseStatus/code")
                .unwrap_or(&serde_json::Value::Null)
        );
        if received < since {
            split.0.push(write);
        } else {
            split.1.push(write);
        }
    }
    split
}
