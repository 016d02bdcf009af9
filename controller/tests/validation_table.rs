//! The Rust `validate` against the shared tables: every sample passes, every invalid spec fails
//! with a message that names the field.

use std::path::{Path, PathBuf};

use mesos_operator::crd::{MarathonApp, MesosAgentPool, MesosCluster};
use mesos_operator::validation::{self, ValidationErrors};
use serde::Deserialize;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Deserialises a manifest by its kind and validates it.
fn validate(doc: serde_yaml::Value) -> Result<(), ValidationErrors> {
    let kind = doc
        .get("kind")
        .and_then(|k| k.as_str())
        .unwrap_or_default()
        .to_string();
    match kind.as_str() {
        "MesosCluster" => {
            validation::cluster(&serde_yaml::from_value::<MesosCluster>(doc).expect("MesosCluster"))
        }
        "MesosAgentPool" => validation::agent_pool(
            &serde_yaml::from_value::<MesosAgentPool>(doc).expect("MesosAgentPool"),
        ),
        "MarathonApp" => validation::marathon_app(
            &serde_yaml::from_value::<MarathonApp>(doc).expect("MarathonApp"),
        ),
        other => panic!("unexpected kind {other:?}"),
    }
}

#[test]
fn every_sample_is_valid() {
    let mut count = 0;
    for entry in std::fs::read_dir(workspace().join("samples")).expect("samples/") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read sample");
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let doc = serde_yaml::Value::deserialize(doc).expect("yaml");
            if doc.is_null() {
                continue;
            }
            if let Err(e) = validate(doc) {
                panic!("{} is invalid: {e}", path.display());
            }
            count += 1;
        }
    }
    assert!(
        count >= 4,
        "expected the cluster, two agent pools and an app in samples/, found {count}"
    );
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Case {
    name: String,
    field: String,
    expect: String,
    #[serde(default = "both")]
    checked_by: Vec<String>,
    object: serde_yaml::Value,
}

fn both() -> Vec<String> {
    vec!["apiserver".into(), "validate".into()]
}

#[test]
fn every_invalid_spec_is_rejected_naming_its_field() {
    let text = std::fs::read_to_string(workspace().join("controller/testdata/invalid-specs.yaml"))
        .expect("table");
    let cases: Vec<Case> = serde_yaml::from_str(&text).expect("table parses");
    let mut checked = 0;
    let mut failures = Vec::new();
    for case in cases
        .into_iter()
        .filter(|c| c.checked_by.iter().any(|b| b == "validate"))
    {
        checked += 1;
        match validate(case.object) {
            Ok(()) => failures.push(format!("{}: accepted", case.name)),
            Err(errors) => {
                let hit = errors
                    .0
                    .iter()
                    .any(|e| e.field.starts_with(&case.field) && e.message.contains(&case.expect));
                let shown = errors.to_string();
                if !hit || !shown.contains(&case.field) {
                    failures.push(format!(
                        "{}: expected {} / {:?}, got {shown}",
                        case.name, case.field, case.expect
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} cases wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        checked >= 40,
        "the table must hold at least 40 cases for validate, has {checked}"
    );
}
