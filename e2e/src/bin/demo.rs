//! `cargo run -p e2e --bin demo`: a local Kubernetes control plane, three fake nodes, the
//! operator and the samples, with periodic `kubectl get`-like summaries until Ctrl-C.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use e2e::manifests::{self, Resolver};
use e2e::process::Supervised;
use e2e::{ControlPlane, NodeRunner, NodeRunnerConfig, paths};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::GroupVersionKind;
use kube::discovery::Discovery;

const KINDS: [&str; 3] = ["MesosCluster", "MesosAgentPool", "MarathonApp"];
const GROUP: &str = "mesos.operator.dev";
const VERSION: &str = "v1alpha1";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,e2e=info,kube_client::client::builder=off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    // Build (or find cached) kube-apiserver/controller-manager/kubectl, then our own binaries.
    let started = Instant::now();
    let status = Command::new(paths::k8s_build_script())
        .stdout(std::process::Stdio::null())
        .status()
        .context("running e2e/control-plane/build.sh")?;
    if !status.success() {
        bail!("e2e/control-plane/build.sh failed ({status}); see its output above");
    }
    let operator_built = cargo_build(&["-p", "mesos-operator", "--bin", "mesos-operator"]);
    let sims_built = cargo_build(&["-p", "mesos-sims", "--bins"]);

    let crd_dir = paths::workspace_root().join("crds");
    if manifests::yaml_files(&crd_dir)?.is_empty() {
        println!(
            "{} holds no CRDs: the samples will be rejected (regenerate: cargo run -p mesos-operator -- crd --out-dir crds)",
            crd_dir.display()
        );
    }
    let cp = ControlPlane::start().await?;
    println!(
        "control plane ready in {:.1} s (etcd + kube-apiserver {} + kube-controller-manager)",
        cp.started_in().as_secs_f32(),
        paths::K8S_VERSION
    );
    let client = cp.client();
    let runner = NodeRunner::start(client.clone(), NodeRunnerConfig::default()).await?;
    println!(
        "node runner: node-a, node-b, node-c in zone-a/b/c; pods under {}",
        runner.dir().display()
    );

    let operator = start_operator(&cp, operator_built.as_ref().err());
    apply_samples(&client).await?;

    let kubectl = paths::k8s_bin_dir().join("kubectl");
    println!("\nready after {:.1} s", started.elapsed().as_secs_f32());
    println!("kubeconfig: {}", cp.kubeconfig().display());
    println!(
        "try:        KUBECONFIG={} {} get mc,map,mapp,pods -A",
        cp.kubeconfig().display(),
        kubectl.display()
    );
    if let Err(e) = &sims_built {
        println!(
            "simulators: NOT built ({e}); mesos-master/agent/marathon pods will report ErrImagePull"
        );
    }
    println!("Ctrl-C (or SIGTERM) stops everything.\n");

    let mut operator = operator;
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    // TERM and HUP too: a `timeout` or a closed terminal must also tear everything down.
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = hup.recv() => break,
            _ = tick.tick() => {
                if let Some(op) = operator.as_mut()
                    && let Some(status) = op.exit_status()
                {
                    println!("operator exited ({status}); last lines of {}:\n{}", op.log_path().display(), op.log_tail(15));
                    operator = None;
                }
                if let Err(e) = summary(&client).await {
                    println!("(summary failed: {e})");
                }
            }
        }
    }
    println!("stopping: operator, pods, control plane");
    drop(operator);
    runner.shutdown().await;
    drop(cp);
    Ok(())
}

/// `cargo build` of a workspace binary; the error says why it is unavailable.
fn cargo_build(args: &[&str]) -> Result<(), String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .arg("build")
        .args(args)
        .current_dir(paths::workspace_root())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err
            .lines()
            .find(|l| l.starts_with("error"))
            .unwrap_or("cargo build failed");
        Err(first.to_string())
    }
}

/// Starts `mesos-operator run` against the local cluster, or says plainly why it cannot.
fn start_operator(cp: &ControlPlane, build_error: Option<&String>) -> Option<Supervised> {
    let binary: PathBuf = paths::target_bin_dir().join("mesos-operator");
    if let Some(e) = build_error {
        println!("operator: NOT running: building it failed: {e}");
        return None;
    }
    if !binary.is_file() {
        println!("operator: NOT running: {} does not exist", binary.display());
        return None;
    }
    let mut cmd = Command::new(&binary);
    cmd.arg("run")
        .arg(format!(
            "--metrics-addr=127.0.0.1:{}",
            e2e::ports::free_port()
        ))
        .env("KUBECONFIG", cp.kubeconfig());
    let log: &Path = &cp.dir().join("operator.log");
    match Supervised::spawn("mesos-operator", cmd, log) {
        Ok(op) => {
            println!(
                "operator: running (pid {}), log {}",
                op.pid(),
                log.display()
            );
            Some(op)
        }
        Err(e) => {
            println!("operator: NOT running: {e}");
            None
        }
    }
}

async fn apply_samples(client: &Client) -> anyhow::Result<()> {
    let dir = paths::workspace_root().join("samples");
    let resolver = Resolver::new(client.clone()).await?;
    for file in manifests::yaml_files(&dir)? {
        for doc in manifests::read_documents(&file)? {
            match resolver.create(&doc, "default").await {
                Ok(obj) => println!(
                    "applied {} {}",
                    obj.types.map(|t| t.kind).unwrap_or_default(),
                    obj.metadata.name.unwrap_or_default()
                ),
                Err(e) => println!("sample {} rejected: {e}", file.display()),
            }
        }
    }
    Ok(())
}

/// A `kubectl get`-like view of the custom resources and pods.
async fn summary(client: &Client) -> anyhow::Result<()> {
    let discovery = Discovery::new(client.clone()).run().await?;
    println!("--- {}", k8s_openapi::jiff::Timestamp::now());
    for kind in KINDS {
        let Some((resource, _)) =
            discovery.resolve_gvk(&GroupVersionKind::gvk(GROUP, VERSION, kind))
        else {
            println!("{kind}: CRD not installed");
            continue;
        };
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        for obj in api.list(&ListParams::default()).await? {
            let conditions = obj
                .data
                .pointer("/status/conditions")
                .and_then(|c| c.as_array())
                .map(|cs| {
                    cs.iter()
                        .map(|c| {
                            format!(
                                "{}={}",
                                c["type"].as_str().unwrap_or("?"),
                                c["status"].as_str().unwrap_or("?")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_else(|| "no status yet".into());
            println!(
                "{kind:<15} {}/{:<20} {conditions}",
                obj.metadata.namespace.as_deref().unwrap_or("-"),
                obj.metadata.name.as_deref().unwrap_or_default()
            );
        }
    }
    let pods: Api<Pod> = Api::all(client.clone());
    let list = pods.list(&ListParams::default()).await?;
    if list.items.is_empty() {
        println!("pods: none");
    }
    for p in list {
        let status = p.status.unwrap_or_default();
        let containers = status.container_statuses.unwrap_or_default();
        let ready = containers.iter().filter(|c| c.ready).count();
        let restarts: i32 = containers.iter().map(|c| c.restart_count).sum();
        let waiting = containers
            .iter()
            .find_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone())
            .unwrap_or_default();
        println!(
            "pod {:<35} {ready}/{} {:<9} {waiting:<17} restarts={restarts} node={} ip={}",
            format!(
                "{}/{}",
                p.metadata.namespace.unwrap_or_default(),
                p.metadata.name.unwrap_or_default()
            ),
            containers.len(),
            status.phase.unwrap_or_default(),
            p.spec
                .and_then(|s| s.node_name)
                .unwrap_or_else(|| "<none>".into()),
            status.pod_ip.unwrap_or_default(),
        );
    }
    Ok(())
}
