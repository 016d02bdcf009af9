//! The real apiserver with the project's CRDs: every sample is accepted, and every invalid
//! spec in the shared table that the apiserver is meant to check is rejected by it with a
//! message naming the field and saying why.

use std::path::Path;

use e2e::ControlPlane;
use e2e::manifests::{self, Resolver};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, PostParams};
use serde::Deserialize;
use serde_json::json;

const NS: &str = "admission";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Case {
    name: String,
    field: String,
    expect: String,
    #[serde(default)]
    checked_by: Option<Vec<String>>,
    #[serde(default)]
    old: Option<serde_json::Value>,
    object: serde_json::Value,
}

impl Case {
    fn for_apiserver(&self) -> bool {
        self.checked_by
            .as_ref()
            .is_none_or(|c| c.iter().any(|c| c == "apiserver"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_are_accepted_and_invalid_specs_rejected_by_the_apiserver() {
    let root = e2e::paths::workspace_root();
    let cp = ControlPlane::start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    println!("control plane with CRDs ready in {:?}", cp.started_in());
    let client = cp.client();
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NS}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let resolver = Resolver::new(client.clone()).await.unwrap();

    let mut accepted = 0;
    for file in manifests::yaml_files(&root.join("samples")).unwrap() {
        for doc in manifests::read_documents(&file).unwrap() {
            if let Err(e) = resolver.create(&doc, NS).await {
                panic!("sample {} rejected: {}", file.display(), message(&e));
            }
            accepted += 1;
        }
    }
    assert!(
        accepted > 0,
        "no samples found under {}",
        root.join("samples").display()
    );
    println!("{accepted} sample objects accepted");

    let table = root.join("controller/testdata/invalid-specs.yaml");
    let cases = load_cases(&table);
    let ours: Vec<&Case> = cases.iter().filter(|c| c.for_apiserver()).collect();
    let mut failures = Vec::new();
    for case in &ours {
        if let Err(f) = check_case(&resolver, case).await {
            failures.push(format!("{}: {f}", case.name));
        }
    }
    println!(
        "{} of {} cases are the apiserver's; {} failed",
        ours.len(),
        cases.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} cases not rejected as expected:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        ours.len() >= 40,
        "only {} apiserver cases in {} (need >= 40)",
        ours.len(),
        table.display()
    );
}

fn load_cases(path: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Creates `old` (if any) and then `object` (as an update when `old` exists); the last step
/// must be rejected with a message containing the field and the expected text.
async fn check_case(resolver: &Resolver, case: &Case) -> Result<(), String> {
    let result = match &case.old {
        Some(old) => {
            resolver
                .create(old, NS)
                .await
                .map_err(|e| format!("old object rejected: {}", message(&e)))?;
            resolver.replace(&case.object, NS).await
        }
        None => resolver.create(&case.object, NS).await,
    };
    // Leave nothing behind for the next case (they share names).
    if let Ok((api, obj)) = resolver.api_for(&case.object, NS)
        && let Some(name) = obj.metadata.name
    {
        let _ = api.delete(&name, &DeleteParams::default()).await;
    }
    match result {
        Ok(_) => Err("accepted by the apiserver".into()),
        Err(e) => {
            let text = message(&e);
            if !text.contains(&case.expect) {
                Err(format!("message lacks {:?}: {text}", case.expect))
            } else if !text.contains(&case.field) {
                Err(format!("message does not name {}: {text}", case.field))
            } else {
                Ok(())
            }
        }
    }
}

fn message(e: &manifests::ManifestError) -> String {
    match e {
        manifests::ManifestError::Kube(k) => e2e::control_plane::api_message(k),
        other => other.to_string(),
    }
}
