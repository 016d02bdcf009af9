//! The control plane harness against the real binaries: start, serve, garbage-collect, tear
//! down without leaving processes, and fail clearly when a binary is missing.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use e2e::{ControlPlane, ControlPlaneError, ControlPlaneOptions};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

fn alive(pid: u32) -> bool {
    // A zombie is dead for our purposes; only a running or sleeping process counts.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or_default()
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

#[tokio::test]
async fn serves_collects_garbage_and_leaves_nothing_behind() {
    // CRDs are the admission test's business; this one checks the harness alone.
    let options = ControlPlaneOptions {
        crd_dir: None,
        ..ControlPlaneOptions::default()
    };
    let cp = ControlPlane::start_with(options)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    println!("control plane ready in {:?}", cp.started_in());
    let client = cp.client();

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "gc-test"}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "gc-test");
    let owner = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "owner"}})).unwrap(),
        )
        .await
        .unwrap();
    let owned: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "owned", "ownerReferences": [{
        "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}]}}))
        .unwrap();
    cms.create(&PostParams::default(), &owned).await.unwrap();
    cms.delete("owner", &DeleteParams::default()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while cms.get_opt("owned").await.unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "the garbage collector did not delete the owned object"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    assert!(cp.kubeconfig().is_file());
    let pids = cp.pids();
    let dir: PathBuf = cp.dir().to_path_buf();
    assert_eq!(pids.len(), 3, "etcd, apiserver, controller-manager");
    assert!(pids.iter().all(|p| alive(*p)));
    drop(cp);
    for pid in pids {
        assert!(!alive(pid), "process {pid} survived teardown");
    }
    assert!(!dir.exists(), "{} was not removed", dir.display());
}

#[tokio::test]
async fn a_missing_binary_is_named_with_the_fix() {
    let options = ControlPlaneOptions {
        k8s_bin_dir: Path::new("/nonexistent/k8s/bin").to_path_buf(),
        ..ControlPlaneOptions::default()
    };
    let err = match ControlPlane::start_with(options).await {
        Err(e) => e,
        Ok(_) => panic!("started without binaries"),
    };
    assert!(
        matches!(
            err,
            ControlPlaneError::MissingBinary {
                name: "kube-apiserver",
                ..
            }
        ),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("/nonexistent/k8s/bin/kube-apiserver") && text.contains("build.sh"),
        "{text}"
    );
}
