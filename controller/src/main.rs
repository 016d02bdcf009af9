//! The `mesos-operator` command: `run` the controllers, print the `crd`s, or show the `version`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use k8s_openapi::api::coordination::v1::Lease;
use kube::runtime::events::Reporter;
use kube::{Api, Client};
use tokio::sync::watch;

use mesos_operator::controllers::{self, Context};
use mesos_operator::http::{self, Health};
use mesos_operator::leader::{Elector, Leadership, Timing};
use mesos_operator::metrics::Metrics;
use mesos_operator::telemetry::{self, LogFormat};
use mesos_operator::{crd, dry_run};

#[derive(Parser)]
#[command(
    name = "mesos-operator",
    version,
    about = "Kubernetes operator for Apache Mesos, Marathon and ZooKeeper"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controllers against the cluster of the current kubeconfig (or in-cluster config).
    Run(RunArgs),
    /// Print every CRD as YAML, or write one file per CRD into a directory.
    Crd {
        /// Write `<plural>.<group>.yaml` files here instead of printing.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
    /// Print every step the operator would take to move a cluster from an observed state to a
    /// MesosCluster spec, assuming each step succeeds. Nothing is contacted.
    Plan {
        /// The observed state (see controller/testdata/observed-3-masters.yaml).
        #[arg(long)]
        from: PathBuf,
        /// A MesosCluster manifest.
        #[arg(long)]
        to: PathBuf,
        /// Assume the spec's configuration differs from the members' (plan a rolling restart too).
        #[arg(long)]
        roll_config: bool,
    },
    /// Print the version.
    Version,
}

#[derive(Args)]
struct RunArgs {
    /// Address of the /metrics, /healthz and /readyz endpoints.
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Log line format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t)]
    log_format: LogFormat,
    /// Namespace of the leader-election Lease (the operator's own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "mesos-operator-leader")]
    lease_name: String,
    /// This replica's identity in the Lease (default: pod name, else host name and pid).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Act without leader election (only when a single replica can ever run).
    #[arg(long)]
    no_leader_election: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => {
            telemetry::init(args.log_format);
            // Crash at the step boundaries named in FAILPOINTS, for tests (docs/testing.md).
            let _failpoints = std::env::var_os("FAILPOINTS").map(|_| fail::FailScenario::setup());
            tokio::runtime::Runtime::new()
                .context("starting the async runtime")
                .and_then(|rt| rt.block_on(run(args)))
        }
        Command::Crd { out_dir } => print_crds(out_dir),
        Command::Plan {
            from,
            to,
            roll_config,
        } => dry_run(&from, &to, roll_config),
        Command::Version => {
            println!("mesos-operator {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mesos-operator: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dry_run(from: &std::path::Path, to: &std::path::Path, roll_config: bool) -> anyhow::Result<()> {
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
    };
    let config = if roll_config {
        dry_run::Config::Changed
    } else {
        dry_run::Config::Unchanged
    };
    print!(
        "{}",
        dry_run::plan(&read(from)?, &read(to)?, config, chrono::Utc::now())?
    );
    Ok(())
}

fn print_crds(out_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let Some(dir) = out_dir else {
        print!("{}", crd::to_yaml()?);
        return Ok(());
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for c in crd::all() {
        let path = dir.join(crd::file_name(&c));
        std::fs::write(&path, serde_yaml::to_string(&c)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let identity = args.identity.clone().unwrap_or_else(default_identity);
    let mut config = kube::Config::infer()
        .await
        .context("loading the Kubernetes client configuration")?;
    // Which replica made a request, in the API server's audit log.
    let agent = format!("mesos-operator/{} ({identity})", env!("CARGO_PKG_VERSION"));
    config.headers.push((
        ::http::header::USER_AGENT,
        ::http::HeaderValue::from_str(&agent).context("the identity as a User-Agent")?,
    ));
    let client = Client::try_from(config).context("building the Kubernetes client")?;
    let metrics = Metrics::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    tokio::spawn(signal_stop(stop_tx.clone()));

    let ready = Arc::new(AtomicBool::new(false));
    let server = tokio::spawn(http::serve(
        args.metrics_addr,
        Health {
            metrics: metrics.clone(),
            ready: ready.clone(),
        },
        stopped(),
    ));
    wait_for_apiserver(&client, stopped()).await?;
    ready.store(true, Ordering::Relaxed);

    let reporter = Reporter {
        controller: "mesos-operator".into(),
        instance: Some(identity.clone()),
    };
    let mut elector = (!args.no_leader_election).then(|| {
        let leases: Api<Lease> = Api::namespaced(client.clone(), &args.lease_namespace);
        Elector::new(leases, &args.lease_name, &identity, Timing::default())
    });
    // Leader fencing: the controllers act only while the elector's lease validity holds.
    let leadership = elector
        .as_ref()
        .map_or_else(Leadership::unconditional, Elector::leadership);
    let ctx = Arc::new(
        Context::new(client.clone(), metrics.clone(), reporter).with_leadership(leadership),
    );
    if let Some(e) = elector.as_mut() {
        tracing::info!(lease = %args.lease_name, namespace = %args.lease_namespace, identity = %e.identity(), "waiting for leadership");
        tokio::select! {
            () = e.acquire() => {}
            () = stopped() => return Ok(()),
        }
    }
    metrics.set_leading(true);

    let controllers = controllers::run(ctx, futures::FutureExt::shared(Box::pin(stopped())));
    let outcome = match elector.as_mut() {
        Some(e) => {
            tokio::select! {
                () = controllers => { e.release().await; metrics.set_leading(false); Ok(()) }
                lost = e.hold() => {
                    // The controllers are dropped here: no pass continues, and the guard
                    // already refuses every write. The process exits, as client-go's
                    // leaderelection does, and starts again as a candidate.
                    metrics.leadership_lost(lost.reason());
                    Err(anyhow::Error::new(lost).context("stopping: another replica may act now"))
                }
            }
        }
        None => {
            controllers.await;
            Ok(())
        }
    };
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    outcome
}

/// Resolves the stop channel on SIGTERM or Ctrl-C.
async fn signal_stop(stop: watch::Sender<bool>) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: shutting down"),
    }
    let _ = stop.send(true);
}

/// Retries until the apiserver answers, so readiness means "can reach Kubernetes".
async fn wait_for_apiserver(
    client: &Client,
    stopped: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let attempts = async {
        loop {
            match client.apiserver_version().await {
                Ok(v) => {
                    tracing::info!(version = %v.git_version, "connected to the Kubernetes API");
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "Kubernetes API not reachable yet"),
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    };
    tokio::select! {
        () = attempts => Ok(()),
        () = stopped => anyhow::bail!("stopped before the Kubernetes API answered"),
    }
}

fn default_identity() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "mesos-operator".into());
    format!("{host}-{}", std::process::id())
}
