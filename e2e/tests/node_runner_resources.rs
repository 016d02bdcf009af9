//! What pods get from the node runner: PVC directories (wiped with the claim), DNS names of
//! every pod in each pod's /etc/hosts, a real ZooKeeper for `zookeeper:*`, and a clear reason
//! for images it cannot run.

mod common;

use std::time::{Duration, Instant};

use common::{Env, is_ready, pod, wait_pod};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolume, PersistentVolumeClaim, Pod, Secret};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

const NS: &str = "resources";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_dns_zookeeper_and_unknown_images() {
    let env = Env::start().await;
    let pods = env.namespace(NS).await;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(env.client.clone(), NS);

    // A claim of the default (local-dir) class, used by a pod that writes into it.
    let claim: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    }))
    .unwrap();
    claims.create(&PostParams::default(), &claim).await.unwrap();
    let writer = pod(json!({
        "metadata": {"name": "writer"},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": "busybox:1.36",
                "command": ["sh", "-c", "echo hello > /data/greeting && exec sleep 3600"],
                "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]
        }
    }));
    pods.create(&PostParams::default(), &writer).await.unwrap();
    wait_pod(
        &pods,
        "writer",
        "writer ready",
        Duration::from_secs(20),
        is_ready,
    )
    .await;
    let pv_name = claims
        .get("data")
        .await
        .unwrap()
        .spec
        .unwrap()
        .volume_name
        .expect("claim bound");
    let dir = env.runner.volume_dir(&pv_name);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(dir.join("greeting"))
        .ok()
        .as_deref()
        != Some("hello\n")
    {
        assert!(
            Instant::now() < deadline,
            "the pod's write did not reach {}",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pods.delete("writer", &DeleteParams::default())
        .await
        .unwrap();
    claims
        .delete("data", &DeleteParams::default())
        .await
        .unwrap();
    let pvs: Api<PersistentVolume> = Api::all(env.client.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    while dir.exists() || pvs.get_opt(&pv_name).await.unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "deleting the claim did not wipe {} and delete its PV",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Claims of an Azure disk class get a local directory too; a class nobody serves, none.
    let sc: StorageClass = serde_json::from_value(json!({
        "metadata": {"name": "managed-premium-p10"}, "provisioner": "disk.csi.azure.com"
    }))
    .unwrap();
    Api::<StorageClass>::all(env.client.clone())
        .create(&PostParams::default(), &sc)
        .await
        .unwrap();
    for (name, class) in [
        ("azure", "managed-premium-p10"),
        ("nowhere", "no-such-class"),
    ] {
        let claim: PersistentVolumeClaim = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"storageClassName": class, "accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}}
        }))
        .unwrap();
        claims.create(&PostParams::default(), &claim).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let bound =
        |c: PersistentVolumeClaim| c.status.and_then(|s| s.phase).as_deref() == Some("Bound");
    while !bound(claims.get("azure").await.unwrap()) {
        assert!(
            Instant::now() < deadline,
            "the Azure-class claim was not bound"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !bound(claims.get("nowhere").await.unwrap()),
        "a claim of an unserved class was bound"
    );

    // ConfigMap and Secret keys as files, downward-API and ConfigMap-key env.
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "conf"}, "data": {"zoo.cfg": "tickTime=2000\n", "level": "debug"}
    }))
    .unwrap();
    Api::<ConfigMap>::namespaced(env.client.clone(), NS)
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "creds"}, "stringData": {"password": "s3cret"}
    }))
    .unwrap();
    Api::<Secret>::namespaced(env.client.clone(), NS)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let reader = pod(json!({
        "metadata": {"name": "reader"},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
            "name": "main", "image": "busybox:1.36",
            "command": ["sh", "-c", "cat /conf/zoo.cfg /secrets/password; echo; echo $POD_NAME $POD_NAMESPACE $LEVEL; exec sleep 3600"],
            "env": [
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "conf", "key": "level"}}}],
            "volumeMounts": [{"name": "conf", "mountPath": "/conf"}, {"name": "creds", "mountPath": "/secrets"}]}],
            "volumes": [{"name": "conf", "configMap": {"name": "conf"}},
                        {"name": "creds", "secret": {"secretName": "creds"}}]}
    }));
    pods.create(&PostParams::default(), &reader).await.unwrap();
    wait_pod(
        &pods,
        "reader",
        "reader ready",
        Duration::from_secs(20),
        is_ready,
    )
    .await;
    let expected = format!("tickTime=2000\ns3cret\nreader {NS} debug\n");
    let deadline = Instant::now() + Duration::from_secs(5);
    while env.runner.logs(NS, "reader", "main").unwrap() != expected {
        assert!(
            Instant::now() < deadline,
            "reader saw: {:?}",
            env.runner.logs(NS, "reader", "main")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Two members of a headless-service subdomain find each other by DNS name.
    for (name, command) in [
        ("member-0", "exec nc -lk 7000"),
        ("member-1", "exec sleep 3600"),
    ] {
        let p = pod(json!({
            "metadata": {"name": name},
            "spec": {"hostname": name, "subdomain": "members", "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "main", "image": "test:1", "command": ["sh", "-c", command]}]}
        }));
        pods.create(&PostParams::default(), &p).await.unwrap();
    }
    for name in ["member-0", "member-1"] {
        wait_pod(
            &pods,
            name,
            "member ready",
            Duration::from_secs(20),
            is_ready,
        )
        .await;
    }
    let target = format!("member-0.members.{NS}.svc.cluster.local");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = env
            .runner
            .exec(
                NS,
                "member-1",
                "main",
                &["nc", "-z", "-w", "2", &target, "7000"],
            )
            .await
            .unwrap();
        if out.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "member-1 cannot reach {target}: {out:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let ip0 = pods
        .get("member-0")
        .await
        .unwrap()
        .status
        .unwrap()
        .pod_ip
        .unwrap();
    let by_ip = format!("{}.{NS}.pod.cluster.local", ip0.replace('.', "-"));
    let out = env
        .runner
        .exec(NS, "member-1", "main", &["getent", "hosts", &by_ip])
        .await
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with(&ip0),
        "{by_ip}: {out:?}"
    );
    let out = env
        .runner
        .exec(NS, "member-1", "main", &["hostname"])
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "member-1");

    // zookeeper:* runs Debian's ZooKeeper the way the official image does.
    let zk = pod(json!({
        "metadata": {"name": "zk"},
        "spec": {"terminationGracePeriodSeconds": 2, "containers": [{
            "name": "zookeeper", "image": "zookeeper:3.8",
            "env": [{"name": "ZOO_4LW_COMMANDS_WHITELIST", "value": "srvr,ruok"},
                    {"name": "ZOO_ADMINSERVER_ENABLED", "value": "false"}],
            "readinessProbe": {"exec": {"command": ["sh", "-c", "echo srvr | nc -w 2 127.0.0.1 2181 | grep -q Mode"]},
                               "periodSeconds": 1}}]}
    }));
    pods.create(&PostParams::default(), &zk).await.unwrap();
    wait_pod(
        &pods,
        "zk",
        "ZooKeeper serving",
        Duration::from_secs(60),
        is_ready,
    )
    .await;

    // mesos-master:* runs the simulator with the container's args, elected through that
    // ZooKeeper; POD_IP comes from the downward API and is expanded into the args.
    let zk_ip = pods
        .get("zk")
        .await
        .unwrap()
        .status
        .unwrap()
        .pod_ip
        .unwrap();
    let master = pod(json!({
        "metadata": {"name": "master"},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
            "name": "mesos-master", "image": "mesos-master:1.11",
            "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
            "args": [format!("--zk=zk://{zk_ip}:2181/mesos"), "--quorum=1".to_string(),
                     "--work_dir=/var/lib/mesos".to_string(), "--ip=$(POD_IP)".to_string(),
                     "--port=5050".to_string()],
            "volumeMounts": [{"name": "work", "mountPath": "/var/lib/mesos"}],
            "readinessProbe": {"httpGet": {"path": "/health", "port": 5050}, "periodSeconds": 1}}],
            "volumes": [{"name": "work", "emptyDir": {}}]}
    }));
    pods.create(&PostParams::default(), &master).await.unwrap();
    let sim = e2e::paths::target_bin_dir().join("mesos-master-sim");
    if sim.is_file() {
        let p = wait_pod(
            &pods,
            "master",
            "simulated master ready",
            Duration::from_secs(30),
            is_ready,
        )
        .await;
        let ip = p.status.unwrap().pod_ip.unwrap();
        let url = format!("http://{ip}:5050/metrics/snapshot");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = env
                .runner
                .exec(
                    NS,
                    "master",
                    "mesos-master",
                    &["busybox", "wget", "-qO-", &url],
                )
                .await
                .unwrap();
            let metrics: serde_json::Value =
                serde_json::from_slice(&out.stdout).unwrap_or_default();
            if metrics["master/elected"] == json!(1.0) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the simulated master was not elected: {metrics}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    } else {
        // `cargo test -p e2e` alone does not build the simulators; the pod must say so.
        let message = image_pull_message(&pods, "master").await;
        assert!(
            message.contains("mesos-master-sim is not built"),
            "{message}"
        );
        println!(
            "{} is not built: checked that the pod reports it instead",
            sim.display()
        );
    }

    // An image with no program here: a clear reason, never Running.
    let unknown = pod(json!({
        "metadata": {"name": "mystery"},
        "spec": {"containers": [{"name": "main", "image": "nginx:1.27"}]}
    }));
    pods.create(&PostParams::default(), &unknown).await.unwrap();
    let message = image_pull_message(&pods, "mystery").await;
    let phase = pods.get("mystery").await.unwrap().status.unwrap().phase;
    assert_eq!(phase.as_deref(), Some("Pending"));
    assert!(
        message.contains("\"nginx:1.27\" is not in the node runner's image table"),
        "{message}"
    );

    env.teardown().await;
}

/// Waits for the pod's container to wait with ErrImagePull; returns the message.
async fn image_pull_message(pods: &Api<Pod>, name: &str) -> String {
    let p = wait_pod(
        pods,
        name,
        "ErrImagePull reported",
        Duration::from_secs(20),
        |p| waiting_reason(p).as_deref() == Some("ErrImagePull"),
    )
    .await;
    let state = p.status.unwrap().container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap();
    state.waiting.unwrap().message.unwrap_or_default()
}

fn waiting_reason(p: &Pod) -> Option<String> {
    p.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .first()?
        .state
        .as_ref()?
        .waiting
        .as_ref()?
        .reason
        .clone()
}
