//! The MesosCluster operations through the operator binary, one after another on one cluster:
//! 1 -> 3 masters (refused without `acknowledgeLogWipe`, then with it the log is wiped and
//! reported), a rolling restart by `restartRequestedAt` (leader last), a logging change rolled
//! out, ZooKeeper 3 -> 5 -> 3, a master replaced after its pod and volume were destroyed, and a
//! grow that meets a second member cut off mid-way: the operator waits, then completes. After
//! each, the masters' own metrics agree and record no safety violation.

use std::time::{Duration, Instant};

use chrono::Utc;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client};
use mesos_operator::crd::MesosCluster;
use serde_json::json;

mod common;
use common::{
    Operator, assert_masters_healthy, create_cluster, destroy_follower, eventually, master_pods,
    progressing_reason, settled_master_view, start_operator, wait_completed, wait_phase,
};

const NS: &str = "ops";

/// The cluster's Events with `reason` last seen since `since`, in the order they were last
/// seen, as their notes. (A repeated Event is one object with a series, so its last
/// observation, not its first, says when it happened.)
async fn events_since(client: &Client, reason: &str, since: chrono::DateTime<Utc>) -> Vec<String> {
    let last_seen = |e: &Event| {
        let series = e.series.as_ref().map(|s| s.last_observed_time.0);
        series.or(e.event_time.as_ref().map(|t| t.0))
    };
    let mut events: Vec<(i64, String)> = Api::<Event>::namespaced(client.clone(), NS)
        .list(&ListParams::default().fields("regarding.name=prod"))
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter_map(|e| Some((last_seen(&e)?.as_millisecond(), e.note?)))
        .filter(|(at, _)| *at >= since.timestamp_millis())
        .collect();
    events.sort();
    events.into_iter().map(|(_, note)| note).collect()
}

/// Reconcile passes spent waiting on a member so far (each is followed by a 2 s requeue).
async fn waits(operator: &Operator, http: &reqwest::Client) -> f64 {
    operator
        .metric_sum(http, "mesos_operator_operation_waits_total{")
        .await
}

async fn patch(
    api: &Api<MesosCluster>,
    spec: serde_json::Value,
) -> Result<MesosCluster, kube::Error> {
    api.patch(
        "prod",
        &PatchParams::default(),
        &Patch::Merge(json!({ "spec": spec })),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn operations_keep_the_replicated_log_safe() {
    let (cp, runner, client) = common::cluster_env(NS).await;
    let operator = start_operator(&cp, "operator.log", &[], &[]);
    let http = mesos_operator::tls::plain_client();
    let clusters = create_cluster(
        &client,
        NS,
        json!({"zookeeper": {"replicas": 3}, "masters": {"replicas": 1}, "marathon": {"replicas": 1},
               "placement": {"antiAffinity": "None"}}),
    )
    .await;
    let started = Instant::now();
    wait_phase(&client, NS, "Available", "1/1", Duration::from_secs(180)).await;
    eprintln!("Available with 1 master after {:?}", started.elapsed());
    assert_masters_healthy(&settled_master_view(&client, &http, NS).await, 1, 1);

    // 1 -> 3 discards the single master's log: refused at admission unless acknowledged.
    let refused = patch(&clusters, json!({"masters": {"replicas": 3}})).await;
    let message = format!("{refused:?}");
    assert!(
        refused.is_err() && message.contains("acknowledgeLogWipe"),
        "{message}"
    );
    let since = Utc::now();
    patch(
        &clusters,
        json!({"masters": {"replicas": 3, "acknowledgeLogWipe": true}}),
    )
    .await
    .expect("1 -> 3 with acknowledgeLogWipe");
    let (started, waited) = (Instant::now(), waits(&operator, &http).await);
    let mc = wait_phase(&client, NS, "Available", "3/3", Duration::from_secs(240)).await;
    eprintln!(
        "1 -> 3 with a wiped log in {:?} ({} passes waiting on members)",
        started.elapsed(),
        waits(&operator, &http).await - waited
    );
    assert_masters_healthy(&settled_master_view(&client, &http, NS).await, 3, 2);
    let fenced = &mc.status.as_ref().unwrap().tombstones.masters;
    assert_eq!(
        fenced.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["prod-master-1"]
    );
    let wiped = events_since(&client, "LogWipe", since).await;
    assert!(
        wiped.len() == 1
            && wiped[0].contains("prod-master-1")
            && wiped[0].contains("replicated log is discarded"),
        "{wiped:?}"
    );

    // A rolling restart: every master gets a new pod, one at a time, the leader last.
    let leader = mc
        .status
        .as_ref()
        .and_then(|s| s.masters.as_ref())
        .and_then(|m| m.leader.clone())
        .expect("a leader");
    let before = master_pods(&client, NS).await;
    let since = Utc::now();
    patch(
        &clusters,
        json!({"restartRequestedAt": since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}),
    )
    .await
    .expect("restartRequestedAt");
    let (started, waited) = (Instant::now(), waits(&operator, &http).await);
    eventually(
        "every master restarted",
        Duration::from_secs(240),
        || async {
            let now = master_pods(&client, NS).await;
            let restarted = now
                .iter()
                .filter(|(n, uid)| before.get(*n).is_some_and(|b| b != *uid))
                .count();
            if restarted == before.len() && now.len() == before.len() {
                Ok(())
            } else {
                Err(format!("{restarted} of {} restarted", before.len()))
            }
        },
    )
    .await;
    wait_phase(&client, NS, "Available", "3/3", Duration::from_secs(120)).await;
    eprintln!(
        "rolling restart of 3 masters in {:?} ({} passes waiting on members)",
        started.elapsed(),
        waits(&operator, &http).await - waited
    );
    assert_masters_healthy(&settled_master_view(&client, &http, NS).await, 3, 2);
    let restarts = events_since(&client, "RestartMember", since).await;
    let order: Vec<&str> = restarts
        .iter()
        .filter(|n| !n.ends_with("(pod created again)"))
        .filter_map(|n| n.strip_prefix("Restart master ")?.split_whitespace().next())
        .collect();
    assert_eq!(order.len(), 3, "one restart per master: {restarts:#?}");
    assert_eq!(
        order.last(),
        Some(&leader.as_str()),
        "the leader goes last: {order:?}"
    );

    // A logging change is rolled out to every master.
    let before = master_pods(&client, NS).await;
    patch(
        &clusters,
        json!({"masters": {"logging": {"level": "WARNING"}}}),
    )
    .await
    .expect("logging level");
    let (started, waited) = (Instant::now(), waits(&operator, &http).await);
    eventually(
        "--logging_level=WARNING everywhere",
        Duration::from_secs(240),
        || async {
            let view = common::try_master_view(&client, &http, NS).await?;
            let rolled = view
                .values()
                .filter(|(_, args)| args.contains(&"--logging_level=WARNING".to_string()))
                .count();
            if rolled == 3 && view.len() == 3 {
                Ok(())
            } else {
                Err(format!("{rolled} of {}", view.len()))
            }
        },
    )
    .await;
    wait_phase(&client, NS, "Available", "3/3", Duration::from_secs(120)).await;
    eprintln!(
        "logging change rolled out in {:?} ({} passes waiting on members)",
        started.elapsed(),
        waits(&operator, &http).await - waited
    );
    assert_masters_healthy(&settled_master_view(&client, &http, NS).await, 3, 2);
    assert!(
        master_pods(&client, NS)
            .await
            .iter()
            .all(|(n, uid)| before.get(n) != Some(uid))
    );

    // ZooKeeper 3 -> 5 -> 3, one server at a time; the masters stay healthy throughout.
    for (n, what) in [(5, "3 -> 5"), (3, "5 -> 3")] {
        patch(&clusters, json!({"zookeeper": {"replicas": n}}))
            .await
            .expect("ZooKeeper size");
        let (started, waited) = (Instant::now(), waits(&operator, &http).await);
        eventually(
            &format!("ZooKeeper {n}/{n}"),
            Duration::from_secs(300),
            || async {
                let mc = clusters.get("prod").await.map_err(|e| e.to_string())?;
                let s = mc.status.clone().unwrap_or_default();
                let zk = s.zookeeper.and_then(|z| z.ready).unwrap_or_default();
                let current = s.observed_generation == mc.metadata.generation;
                if current && zk == format!("{n}/{n}") && s.phase.as_deref() == Some("Available") {
                    Ok(())
                } else {
                    Err(format!(
                        "zookeeper {zk}, phase {:?}, {:?}",
                        s.phase, s.operation
                    ))
                }
            },
        )
        .await;
        eprintln!(
            "ZooKeeper {what} in {:?} ({} passes waiting on members)",
            started.elapsed(),
            waits(&operator, &http).await - waited
        );
        assert_masters_healthy(&settled_master_view(&client, &http, NS).await, 3, 2);
        // Marathon is re-pointed at the new ensemble too.
        eventually(
            "Marathon on the new ensemble",
            Duration::from_secs(120),
            || async {
                let lp = ListParams::default().labels("mesos.operator.dev/role=marathon");
                let pods = Api::<Pod>::namespaced(client.clone(), NS)
                    .list(&lp)
                    .await
                    .map_err(|e| e.to_string())?;
                let servers: Vec<usize> = pods
                    .items
                    .iter()
                    .filter_map(|p| p.spec.as_ref()?.containers[0].args.clone())
                    .filter_map(|args| {
                        args.iter()
                            .find(|a| a.contains("/marathon"))
                            .map(|a| a.matches("prod-zookeeper-").count())
                    })
                    .collect();
                if servers == [n as usize] {
                    Ok(())
                } else {
                    Err(format!("{servers:?}"))
                }
            },
        )
        .await;
    }

    // Replace: a follower's volume is deleted and its pod killed. It is fenced for good and a
    // fresh member catches up from the others.
    let victim = destroy_follower(&client, &http, NS).await;
    let (started, waited) = (Instant::now(), waits(&operator, &http).await);
    let mc = wait_completed(&client, NS, 3, Some(&victim), Duration::from_secs(240)).await;
    eprintln!(
        "replaced {victim} in {:?} ({} passes waiting on members)",
        started.elapsed(),
        waits(&operator, &http).await - waited
    );
    assert_masters_healthy(&settled_master_view(&client, &http, NS).await, 3, 2);
    assert!(mc.status.unwrap().operation.is_none());

    // Grow 3 -> 5 while a second member is cut off mid-way: the operator waits (and says so)
    // instead of acting without it, then completes once it is back.
    patch(&clusters, json!({"masters": {"replicas": 5}}))
        .await
        .expect("grow");
    let (started, waited) = (Instant::now(), waits(&operator, &http).await);
    eventually("the grow started", Duration::from_secs(60), || async {
        let mc = clusters.get("prod").await.map_err(|e| e.to_string())?;
        if mc.status.and_then(|s| s.operation).is_some() {
            Ok(())
        } else {
            Err("no operation".into())
        }
    })
    .await;
    let cut = master_pods(&client, NS)
        .await
        .into_keys()
        .max_by_key(|n| n.rsplit('-').next().and_then(|o| o.parse::<u32>().ok()))
        .expect("a master");
    runner
        .set_pod_connected(NS, &cut, false)
        .await
        .expect("partition");
    let held = eventually(
        "the operator waits for the cut-off member",
        Duration::from_secs(60),
        || async {
            let mc = clusters.get("prod").await.map_err(|e| e.to_string())?;
            match progressing_reason(&mc).as_deref() {
                Some("MemberUnreachable") => Ok(master_pods(&client, NS).await),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let mc = clusters.get("prod").await.expect("cluster");
    assert_eq!(
        progressing_reason(&mc).as_deref(),
        Some("MemberUnreachable")
    );
    assert_eq!(
        master_pods(&client, NS).await,
        held,
        "no member touched while {cut} is unreachable"
    );
    runner
        .set_pod_connected(NS, &cut, true)
        .await
        .expect("reconnect");
    wait_phase(&client, NS, "Available", "5/5", Duration::from_secs(300)).await;
    eprintln!(
        "grew 3 -> 5 around a partitioned member in {:?} ({} passes waiting on members)",
        started.elapsed(),
        waits(&operator, &http).await - waited
    );
    assert_masters_healthy(&settled_master_view(&client, &http, NS).await, 5, 3);
    runner.shutdown().await;
}
