//! Generated files must match what generates them: `crds/` and the chart's copy match the Rust
//! types, and `deploy/mesos-operator.yaml` matches the chart. Fix a failure with `scripts/generate.sh`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const FIX: &str = "run scripts/generate.sh and commit the result";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn yaml_files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yaml"))
        .collect()
}

#[test]
fn crds_match_the_rust_types() {
    let crds = mesos_operator::crd::all();
    let expected: BTreeSet<String> = crds.iter().map(mesos_operator::crd::file_name).collect();
    for dir in ["crds", "charts/mesos-operator/crds"] {
        let dir = workspace().join(dir);
        assert_eq!(
            yaml_files(&dir),
            expected,
            "{}: unexpected set of files; {FIX}",
            dir.display()
        );
        for crd in &crds {
            let path = dir.join(mesos_operator::crd::file_name(crd));
            let committed = std::fs::read_to_string(&path).expect("read CRD file");
            let generated = serde_yaml::to_string(crd).expect("CRD serialises");
            assert!(
                committed == generated,
                "{} differs from the Rust types; {FIX}",
                path.display()
            );
        }
    }
}

#[test]
fn plain_manifests_match_the_chart() {
    let root = workspace();
    let out = Command::new("bash")
        .arg(root.join("scripts/render-manifests.sh"))
        .arg("--stdout")
        .output()
        .expect("run scripts/render-manifests.sh");
    assert!(
        out.status.success(),
        "rendering the chart failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let committed = std::fs::read_to_string(root.join("deploy/mesos-operator.yaml"))
        .expect("read deploy/mesos-operator.yaml");
    assert!(
        committed == String::from_utf8_lossy(&out.stdout),
        "deploy/mesos-operator.yaml differs from the chart; {FIX}"
    );
}

/// What CI pipelines and Kustomize's helm support run, offline and without flags: it must render.
#[test]
fn the_chart_renders_with_plain_helm_template() {
    let helm = std::env::var("HELM").unwrap_or_else(|_| {
        let cache = std::env::var("XDG_CACHE_HOME")
            .unwrap_or_else(|_| format!("{}/.cache", std::env::var("HOME").expect("HOME")));
        format!("{cache}/mesos-operator/helm/v3.22.0/helm")
    });
    let out = Command::new(&helm)
        .args(["template", "mesos-operator"])
        .arg(workspace().join("charts/mesos-operator"))
        .output()
        .unwrap_or_else(|e| panic!("run {helm} (scripts/setup.sh builds it): {e}"));
    assert!(
        out.status.success(),
        "helm template without flags failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("kind: Deployment"));
}
