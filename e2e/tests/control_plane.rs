//! The control plane harness against the real binaries: start, serve, garbage-collect, tear
//! down without leaving processes, and fail clearly when a binary is missing.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod common;

use common::{alive, start_control_plane};
use e2e::{ControlPlane, ControlPlaneError, ControlPlaneOptions};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

#[tokio::test]
async fn serves_collects_garbage_and_leaves_nothing_behind() {
    let cp = start_control_plane().await;
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

/// Not a test on its own: the child process of `children_die_with_the_test_process`.
#[tokio::test]
#[ignore = "helper run by children_die_with_the_test_process"]
async fn helper_start_and_wait_to_be_killed() {
    if std::env::var_os("E2E_ORPHAN_HELPER").is_none() {
        return;
    }
    let cp = start_control_plane().await;
    let pids: Vec<String> = cp.pids().iter().map(u32::to_string).collect();
    println!(
        "PIDS {} DIRS {} {}",
        pids.join(","),
        cp.dir().display(),
        cp.etcd_data_dir().display()
    );
    tokio::time::sleep(Duration::from_secs(120)).await;
}

#[test]
fn children_die_with_the_test_process() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_start_and_wait_to_be_killed",
            "--ignored",
            "--nocapture",
        ])
        .env("E2E_ORPHAN_HELPER", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let line = stdout
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("PIDS "))
        .expect("the helper reports its control plane");
    let words: Vec<&str> = line.split_whitespace().collect();
    let pids: Vec<u32> = words[1].split(',').map(|p| p.parse().unwrap()).collect();
    assert!(pids.iter().all(|p| alive(*p)));
    // SIGKILL: no destructor runs; only the kernel's parent-death signal can clean up.
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|p| alive(*p)) {
        assert!(
            Instant::now() < deadline,
            "control plane processes outlived their killed parent: {pids:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for dir in &words[3..] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[tokio::test]
async fn a_crashing_apiserver_is_reported_with_its_log() {
    use std::os::unix::fs::PermissionsExt;
    let bin = tempfile::tempdir().unwrap();
    for name in ["kube-apiserver", "kube-controller-manager"] {
        let path = bin.path().join(name);
        std::fs::write(&path, "#!/bin/sh\necho 'E1123 failed to listen on 127.0.0.1: address already in use' >&2\nexit 1\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let options = ControlPlaneOptions {
        k8s_bin_dir: bin.path().to_path_buf(),
        crd_dir: None,
        ..ControlPlaneOptions::default()
    };
    let err = match ControlPlane::start_with(options).await {
        Err(e) => e,
        Ok(_) => panic!("a crashing apiserver was reported as started"),
    };
    let text = err.to_string();
    assert!(
        text.starts_with("kube-apiserver exited during start-up (exit status: 1)"),
        "{text}"
    );
    assert!(
        text.contains("apiserver.log") && text.contains("address already in use"),
        "{text}"
    );
    if let ControlPlaneError::Exited { log, .. } = &err {
        assert!(log.is_file(), "the log the error names is kept");
        let _ = std::fs::remove_dir_all(log.parent().unwrap());
    }
}
