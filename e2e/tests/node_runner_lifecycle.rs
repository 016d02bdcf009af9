//! Pods run for real on the node runner: readiness follows the probe, crashes restart,
//! a cut network fails the probe, deletion honours the grace period, nothing is left behind.

mod common;

use std::time::{Duration, Instant};

use common::{Env, alive, is_ready, pod, restart_count, wait_pod};
use kube::api::{DeleteParams, PostParams};
use serde_json::json;

const NS: &str = "lifecycle";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_restarts_network_cuts_and_graceful_deletion() {
    let env = Env::start().await;
    let pods = env.namespace(NS).await;

    // An HTTP server whose readiness page appears only when the test writes it.
    let web = pod(json!({
        "metadata": {"name": "web"},
        "spec": {
            "containers": [{
                "name": "httpd", "image": "busybox:1.36",
                "command": ["busybox", "httpd", "-f", "-p", "8080", "-h", "/www"],
                "ports": [{"name": "http", "containerPort": 8080}],
                "readinessProbe": {"httpGet": {"path": "/ready.txt", "port": "http"},
                                   "periodSeconds": 1, "failureThreshold": 1},
                "volumeMounts": [{"name": "www", "mountPath": "/www"}]
            }],
            "volumes": [{"name": "www", "emptyDir": {}}]
        }
    }));
    pods.create(&PostParams::default(), &web).await.unwrap();
    let running = wait_pod(&pods, "web", "web running", Duration::from_secs(20), |p| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
    })
    .await;
    let ip = running
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .expect("a pod IP");
    assert!(ip.starts_with("10.244."), "{ip}");
    // Several probe periods pass without the page: never Ready.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            !is_ready(&pods.get("web").await.unwrap()),
            "Ready before its probe passed"
        );
    }
    let out = env
        .runner
        .exec(
            NS,
            "web",
            "httpd",
            &["sh", "-c", "echo ok > /www/ready.txt"],
        )
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    wait_pod(
        &pods,
        "web",
        "web Ready once its probe passes",
        Duration::from_secs(10),
        is_ready,
    )
    .await;

    // Cut off the network: the HTTP probe from the node fails, the pod goes NotReady.
    env.runner
        .set_pod_connected(NS, "web", false)
        .await
        .unwrap();
    wait_pod(
        &pods,
        "web",
        "web NotReady while cut off",
        Duration::from_secs(15),
        |p| !is_ready(p),
    )
    .await;
    env.runner.set_pod_connected(NS, "web", true).await.unwrap();
    wait_pod(
        &pods,
        "web",
        "web Ready again after reconnecting",
        Duration::from_secs(15),
        is_ready,
    )
    .await;

    // A crash (SIGKILL) restarts the container and counts.
    let before = restart_count(&pods.get("web").await.unwrap());
    let old_pid = env.runner.container_pid(NS, "web", "httpd").unwrap();
    env.runner.kill_container(NS, "web", "httpd").unwrap();
    let after = wait_pod(
        &pods,
        "web",
        "restartCount incremented and Ready again",
        Duration::from_secs(20),
        |p| restart_count(p) == before + 1 && is_ready(p),
    )
    .await;
    let last = after.status.unwrap().container_statuses.unwrap()[0]
        .last_state
        .clone()
        .unwrap();
    assert_eq!(last.terminated.unwrap().exit_code, 137, "killed by SIGKILL");
    assert!(!alive(old_pid));
    let reasons = common::event_reasons(&env.client, NS, "web").await;
    for expected in ["Scheduled", "Started", "BackOff"] {
        assert!(
            reasons.iter().any(|r| r == expected),
            "no {expected} event in {reasons:?}"
        );
    }
    assert!(env.runner.logs(NS, "web", "httpd").is_ok());

    // A failing liveness probe restarts the container; the restarted one passes again.
    let live = pod(json!({
        "metadata": {"name": "live"},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": "test:1",
                "command": ["sh", "-c", "touch /state/alive && exec sleep 3600"],
                "livenessProbe": {"exec": {"command": ["test", "-f", "/state/alive"]},
                                  "periodSeconds": 1, "failureThreshold": 2},
                "volumeMounts": [{"name": "state", "mountPath": "/state"}]}],
            "volumes": [{"name": "state", "emptyDir": {}}]
        }
    }));
    pods.create(&PostParams::default(), &live).await.unwrap();
    wait_pod(
        &pods,
        "live",
        "live running",
        Duration::from_secs(20),
        is_ready,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        restart_count(&pods.get("live").await.unwrap()),
        0,
        "restarted while its liveness probe passed"
    );
    let out = env
        .runner
        .exec(NS, "live", "main", &["rm", "/state/alive"])
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    wait_pod(
        &pods,
        "live",
        "restarted after failing liveness",
        Duration::from_secs(20),
        |p| restart_count(p) == 1 && is_ready(p),
    )
    .await;
    let reasons = common::event_reasons(&env.client, NS, "live").await;
    assert!(reasons.iter().any(|r| r == "Unhealthy"), "{reasons:?}");

    // Deleting a pod that ignores SIGTERM: killed when the grace period ends, not before.
    let stubborn = pod(json!({
        "metadata": {"name": "stubborn"},
        "spec": {
            "terminationGracePeriodSeconds": 3,
            "containers": [{"name": "main", "image": "test:1",
                "command": ["sh", "-c", "trap 'echo got TERM' TERM; while true; do sleep 0.2; done"]}]
        }
    }));
    pods.create(&PostParams::default(), &stubborn)
        .await
        .unwrap();
    wait_pod(
        &pods,
        "stubborn",
        "stubborn running",
        Duration::from_secs(20),
        is_ready,
    )
    .await;
    let pid = env.runner.container_pid(NS, "stubborn", "main").unwrap();
    let deleted = Instant::now();
    pods.delete("stubborn", &DeleteParams::default())
        .await
        .unwrap();
    while alive(pid) {
        assert!(
            deleted.elapsed() < Duration::from_secs(6),
            "still running 6 s into a 3 s grace period"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stopped_after = deleted.elapsed();
    assert!(
        stopped_after >= Duration::from_millis(2500),
        "killed before the grace period ended: {stopped_after:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while pods.get_opt("stubborn").await.unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "the pod object was not removed after its processes stopped"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("stubborn pod stopped {stopped_after:?} after deletion (grace 3 s)");

    // restartPolicy Never: a clean exit is Succeeded, a failing one Failed with its code.
    for (name, code) in [("done", 0), ("broken", 3)] {
        let p = pod(json!({
            "metadata": {"name": name},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "test:1",
                "command": ["sh", "-c", format!("exit {code}")]}]}
        }));
        pods.create(&PostParams::default(), &p).await.unwrap();
    }
    let phase =
        |p: &k8s_openapi::api::core::v1::Pod| p.status.as_ref().and_then(|s| s.phase.clone());
    wait_pod(&pods, "done", "Succeeded", Duration::from_secs(20), |p| {
        phase(p).as_deref() == Some("Succeeded")
    })
    .await;
    let broken = wait_pod(&pods, "broken", "Failed", Duration::from_secs(20), |p| {
        phase(p).as_deref() == Some("Failed")
    })
    .await;
    let state = broken.status.unwrap().container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap();
    assert_eq!(state.terminated.unwrap().exit_code, 3);
    for name in ["done", "broken"] {
        pods.delete(name, &DeleteParams::default()).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while pods.get_opt("done").await.unwrap().is_some()
        || pods.get_opt("broken").await.unwrap().is_some()
    {
        assert!(
            Instant::now() < deadline,
            "finished pods were not removed on deletion"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    env.teardown().await;
}
