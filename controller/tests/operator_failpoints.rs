//! The operator crashes at every failpoint of grow, shrink and replace (one run each, the
//! process exiting there as `kill -9` would leave it), is started again, and finishes the
//! operation from what it persisted: the masters agree and record no safety violation.

use std::time::{Duration, Instant};

use e2e::process::Supervised;
use kube::Client;
use mesos_operator::controllers::cluster::execute::FAILPOINT_EXIT_CODE;

mod common;
use common::{
    assert_masters_healthy, create_three_masters, destroy_follower, eventually, set_masters,
    settled_master_view, start_operator, wait_completed, wait_phase,
};

const NS: &str = "crash";

/// One operation, and the failpoints it passes.
#[derive(Clone, Copy, Debug)]
enum Operation {
    Grow,
    Shrink,
    Replace,
}

const RUNS: &[(Operation, &str)] = &[
    (Operation::Grow, "mesoscluster/persist-operation"),
    (Operation::Shrink, "mesoscluster/persist-tombstone"),
    (Operation::Grow, "mesoscluster/delete-pod"),
    (Operation::Shrink, "mesoscluster/delete-claim"),
    (Operation::Grow, "mesoscluster/create-claim"),
    (Operation::Shrink, "mesoscluster/delete-pod"),
    (Operation::Grow, "mesoscluster/create-pod"),
    (Operation::Shrink, "mesoscluster/steps-done"),
    (Operation::Grow, "mesoscluster/steps-done"),
    (Operation::Shrink, "mesoscluster/persist-operation"),
    (Operation::Replace, "mesoscluster/persist-operation"),
    (Operation::Replace, "mesoscluster/persist-tombstone"),
    (Operation::Replace, "mesoscluster/delete-claim"),
    (Operation::Replace, "mesoscluster/create-claim"),
    (Operation::Replace, "mesoscluster/create-pod"),
];

/// Starts the operation: a spec change, or a follower's volume and pod destroyed.
/// Starts the operation; returns the masters it ends with and the member it replaces.
async fn begin(op: Operation, client: &Client, http: &reqwest::Client) -> (u32, Option<String>) {
    match op {
        Operation::Grow => {
            set_masters(client, NS, 5).await;
            (5, None)
        }
        Operation::Shrink => {
            set_masters(client, NS, 3).await;
            (3, None)
        }
        Operation::Replace => (3, Some(destroy_follower(client, http, NS).await)),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_operator_resumes_after_a_crash_at_every_failpoint() {
    let (cp, runner, client) = common::cluster_env(NS).await;
    // A single replica without leader election, so a restarted operator acts at once.
    let single = ["--no-leader-election"];
    let mut operator = start_operator(&cp, "operator-0.log", &[], &single);
    create_three_masters(&client, NS).await;
    let http = mesos_operator::tls::plain_client();
    wait_phase(&client, NS, "Available", "3/3", Duration::from_secs(180)).await;
    let mut size = 3;

    for (run, (op, failpoint)) in RUNS.iter().enumerate() {
        drop(operator);
        let armed = format!("{failpoint}=return");
        let mut crashing: Supervised = start_operator(
            &cp,
            &format!("operator-{run}-crash.log"),
            &[("FAILPOINTS", &armed)],
            &single,
        )
        .process;
        let started = Instant::now();
        let (target, victim) = begin(*op, &client, &http).await;
        let status = eventually(
            &format!("{op:?}: a crash at {failpoint}"),
            Duration::from_secs(120),
            || {
                let status = crashing.exit_status();
                async move { status.ok_or_else(|| "still running".to_string()) }
            },
        )
        .await;
        assert_eq!(
            status.code(),
            Some(FAILPOINT_EXIT_CODE),
            "{op:?} at {failpoint}: {}",
            crashing.log_tail(20)
        );
        operator = start_operator(&cp, &format!("operator-{run}.log"), &[], &single);
        wait_completed(
            &client,
            NS,
            target,
            victim.as_deref(),
            Duration::from_secs(300),
        )
        .await;
        size = target;
        let q = size / 2 + 1;
        assert_masters_healthy(&settled_master_view(&client, &http, NS).await, size, q);
        eprintln!(
            "{op:?}, crashed at {failpoint}: completed in {:?}",
            started.elapsed()
        );
    }
    assert_eq!(size, 3);
    drop(operator);
    runner.shutdown().await;
}
