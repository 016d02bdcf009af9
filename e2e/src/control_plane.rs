//! A real local Kubernetes control plane: etcd + kube-apiserver (+ kube-controller-manager for
//! garbage collection and PVC/PV protection) on loopback, on free ports, with generated
//! credentials. One per test (or per test binary); torn down on drop, also when a test panics.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::paths;
use crate::pki::{Pki, PkiError};
use crate::ports::free_port;
use crate::process::{ProcessError, Supervised};

const LOG_TAIL_LINES: usize = 25;

#[derive(Debug, thiserror::Error)]
pub enum ControlPlaneError {
    #[error("{name} not found at {path}: {hint}")]
    MissingBinary {
        name: &'static str,
        path: PathBuf,
        hint: &'static str,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("{name} exited during start-up ({status}); log {log}:\n{tail}")]
    Exited {
        name: String,
        status: String,
        log: PathBuf,
        tail: String,
    },
    #[error("{what} not ready after {secs} s; log {log}:\n{tail}")]
    Timeout {
        what: String,
        secs: u64,
        log: PathBuf,
        tail: String,
    },
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig { path: PathBuf, message: String },
    #[error("installing CRDs from {path}: {message}")]
    Crd { path: PathBuf, message: String },
}

/// The audit log's file name in the control plane directory.
const AUDIT_LOG: &str = "audit.log";

/// Writes at Metadata level, once each (when the response is complete); reads and Events not.
const AUDIT_POLICY: &str = r#"apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived", "ResponseStarted"]
rules:
  - level: None
    verbs: ["get", "list", "watch"]
  - level: None
    resources:
      - group: ""
        resources: ["events"]
      - group: "events.k8s.io"
        resources: ["events"]
  - level: Metadata
"#;

/// What to start.
#[derive(Debug, Clone)]
pub struct ControlPlaneOptions {
    /// Also run kube-controller-manager (garbage collector, namespace deletion, PVC/PV protection).
    pub controller_manager: bool,
    /// Directory whose `*.yaml` CustomResourceDefinitions are installed (skipped if absent).
    pub crd_dir: Option<PathBuf>,
    /// How long to wait for `/readyz`.
    pub ready_timeout: Duration,
    /// Where kube-apiserver and kube-controller-manager are.
    pub k8s_bin_dir: PathBuf,
}

impl Default for ControlPlaneOptions {
    fn default() -> Self {
        Self {
            controller_manager: true,
            crd_dir: Some(paths::workspace_root().join("crds")),
            ready_timeout: Duration::from_secs(60),
            k8s_bin_dir: paths::k8s_bin_dir(),
        }
    }
}

/// A running control plane. Dropping it stops the controller-manager, then the apiserver, then
/// etcd (TERM, then KILL after a deadline), and removes its directories.
pub struct ControlPlane {
    controller_manager: Option<Supervised>,
    apiserver: Supervised,
    etcd: Supervised,
    client: Client,
    kubeconfig: PathBuf,
    server_url: String,
    started_in: Duration,
    /// Removed on drop; kept (with the logs an error points at) when start-up fails.
    dir: PathBuf,
    etcd_data: tempfile::TempDir,
}

impl ControlPlane {
    /// Starts a control plane with the default options (controller-manager, CRDs from `crds/`).
    pub async fn start() -> Result<Self, ControlPlaneError> {
        Self::start_with(ControlPlaneOptions::default()).await
    }

    pub async fn start_with(options: ControlPlaneOptions) -> Result<Self, ControlPlaneError> {
        let started = Instant::now();
        let bins = Binaries::locate(&options.k8s_bin_dir, options.controller_manager)?;
        let dir = tempfile::Builder::new()
            .prefix("mesos-e2e-cp-")
            .tempdir()
            .map_err(|source| io("creating the control plane directory", source))?
            .keep();
        Self::start_in(&options, &bins, dir, started).await
    }

    async fn start_in(
        options: &ControlPlaneOptions,
        bins: &Binaries,
        dir_path: PathBuf,
        started: Instant,
    ) -> Result<Self, ControlPlaneError> {
        let dir = dir_path.as_path();
        let pki = Pki::generate(dir)?;
        // etcd's fsyncs dominate apiserver writes; keep its data in memory when possible.
        let shm = Path::new("/dev/shm");
        let etcd_data = tempfile::Builder::new()
            .prefix("mesos-e2e-etcd-")
            .tempdir_in(if shm.is_dir() { shm } else { dir })
            .map_err(|source| io("creating the etcd data directory", source))?;

        let (etcd_port, peer_port, api_port) = (free_port(), free_port(), free_port());
        let mut etcd_cmd = Command::new(&bins.etcd);
        etcd_cmd.args([
            "--name=default".to_string(),
            format!("--data-dir={}", etcd_data.path().display()),
            format!("--listen-client-urls=http://127.0.0.1:{etcd_port}"),
            format!("--advertise-client-urls=http://127.0.0.1:{etcd_port}"),
            format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"),
            format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"),
            format!("--initial-cluster=default=http://127.0.0.1:{peer_port}"),
            "--log-level=warn".to_string(),
        ]);
        let mut etcd = Supervised::spawn("etcd", etcd_cmd, &dir.join("etcd.log"))?;
        wait_for_port(&mut etcd, etcd_port, Duration::from_secs(20)).await?;

        // Every write is audited (Metadata level: who, what, when, the answer), so a test can
        // tell from the API server's own record which client's request landed when.
        let audit_policy = dir.join("audit-policy.yaml");
        std::fs::write(&audit_policy, AUDIT_POLICY)
            .map_err(|source| io("writing the audit policy", source))?;
        let mut api_cmd = Command::new(&bins.apiserver);
        api_cmd.args([
            format!("--audit-policy-file={}", audit_policy.display()),
            format!("--audit-log-path={}", dir.join(AUDIT_LOG).display()),
            format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
            "--bind-address=127.0.0.1".to_string(),
            // Else it advertises the machine's own address in the `kubernetes` endpoints; a
            // loopback address is only accepted without the endpoint reconciler.
            "--advertise-address=127.0.0.1".to_string(),
            "--endpoint-reconciler-type=none".to_string(),
            format!("--secure-port={api_port}"),
            format!("--cert-dir={}", dir.display()),
            format!("--tls-cert-file={}", pki.serving_cert_file.display()),
            format!("--tls-private-key-file={}", pki.serving_key_file.display()),
            format!("--token-auth-file={}", pki.token_file.display()),
            "--service-account-issuer=https://kubernetes.default.svc".to_string(),
            format!(
                "--service-account-key-file={}",
                pki.service_account_pub_file.display()
            ),
            format!(
                "--service-account-signing-key-file={}",
                pki.service_account_key_file.display()
            ),
            "--authorization-mode=RBAC".to_string(),
            "--service-cluster-ip-range=10.96.0.0/16".to_string(),
            // Pods need no in-cluster token here, and without this plugin a pod created right
            // after its namespace would race the creation of the `default` ServiceAccount.
            "--disable-admission-plugins=ServiceAccount".to_string(),
            "--allow-privileged=true".to_string(),
            "--profiling=false".to_string(),
        ]);
        let mut apiserver =
            Supervised::spawn("kube-apiserver", api_cmd, &dir.join("apiserver.log"))?;

        let server_url = format!("https://127.0.0.1:{api_port}");
        let kubeconfig = dir.join("kubeconfig");
        write_kubeconfig(&kubeconfig, &server_url, &pki)?;
        let client = client_from_kubeconfig(&kubeconfig).await?;
        wait_ready(&client, &mut apiserver, options.ready_timeout).await?;
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            url = %server_url,
            "kube-apiserver ready"
        );

        let controller_manager = match &bins.controller_manager {
            Some(kcm) => {
                let mut cmd = Command::new(kcm);
                cmd.args([
                    format!("--kubeconfig={}", kubeconfig.display()),
                    "--controllers=garbagecollector,namespace,pvc-protection,pv-protection"
                        .to_string(),
                    "--leader-elect=false".to_string(),
                    "--secure-port=0".to_string(),
                    format!(
                        "--service-account-private-key-file={}",
                        pki.service_account_key_file.display()
                    ),
                ]);
                Some(Supervised::spawn(
                    "kube-controller-manager",
                    cmd,
                    &dir.join("controller-manager.log"),
                )?)
            }
            None => None,
        };

        if let Some(crd_dir) = &options.crd_dir {
            install_crds(&client, crd_dir).await?;
        }
        Ok(Self {
            controller_manager,
            apiserver,
            etcd,
            client,
            kubeconfig,
            server_url,
            started_in: started.elapsed(),
            dir: dir_path,
            etcd_data,
        })
    }

    /// A client authenticated as a cluster admin.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The admin kubeconfig file (for kubectl and for the operator via `KUBECONFIG`).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// The directory holding credentials and the logs of etcd, apiserver and controller-manager.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The apiserver's audit log: one JSON event per line for every write request (create,
    /// update, patch, delete; Events excluded), with `userAgent`, `objectRef`,
    /// `responseStatus` and `requestReceivedTimestamp`.
    pub fn audit_log(&self) -> PathBuf {
        self.dir.join(AUDIT_LOG)
    }

    /// etcd's data directory (in /dev/shm when available).
    pub fn etcd_data_dir(&self) -> &Path {
        self.etcd_data.path()
    }

    /// Time from `start` until the apiserver was ready and the CRDs established.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// Pids of the processes this control plane runs (for stray-process checks).
    pub fn pids(&self) -> Vec<u32> {
        let mut pids = vec![self.etcd.pid(), self.apiserver.pid()];
        pids.extend(self.controller_manager.as_ref().map(Supervised::pid));
        pids
    }

    /// Fails with the apiserver's log tail if it has crashed since start.
    pub fn check_alive(&mut self) -> Result<(), ControlPlaneError> {
        for p in [
            Some(&mut self.apiserver),
            Some(&mut self.etcd),
            self.controller_manager.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            if let Some(status) = p.exit_status() {
                return Err(exited(p, status));
            }
        }
        Ok(())
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        if let Some(kcm) = &mut self.controller_manager {
            kcm.stop(Duration::from_secs(2));
        }
        // The apiserver hangs on TERM once etcd is gone, so it goes first.
        self.apiserver.stop(Duration::from_secs(5));
        self.etcd.stop(Duration::from_secs(5));
        if std::thread::panicking() {
            // A failing test: keep the logs to read.
            eprintln!("control plane logs kept in {}", self.dir.display());
            return;
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "removing the control plane directory");
        }
    }
}

struct Binaries {
    etcd: PathBuf,
    apiserver: PathBuf,
    controller_manager: Option<PathBuf>,
}

impl Binaries {
    fn locate(bin: &Path, controller_manager: bool) -> Result<Self, ControlPlaneError> {
        let etcd = paths::which("etcd").ok_or(ControlPlaneError::MissingBinary {
            name: "etcd",
            path: PathBuf::from("$PATH"),
            hint: "install Debian's etcd-server (scripts/setup.sh does)",
        })?;
        const HINT: &str = "run e2e/control-plane/build.sh (scripts/setup.sh does)";
        let apiserver = bin.join("kube-apiserver");
        if !apiserver.is_file() {
            return Err(ControlPlaneError::MissingBinary {
                name: "kube-apiserver",
                path: apiserver,
                hint: HINT,
            });
        }
        let controller_manager = if controller_manager {
            let kcm = bin.join("kube-controller-manager");
            if !kcm.is_file() {
                return Err(ControlPlaneError::MissingBinary {
                    name: "kube-controller-manager",
                    path: kcm,
                    hint: HINT,
                });
            }
            Some(kcm)
        } else {
            None
        };
        Ok(Self {
            etcd,
            apiserver,
            controller_manager,
        })
    }
}

fn io(what: &str, source: std::io::Error) -> ControlPlaneError {
    ControlPlaneError::Io {
        what: what.to_string(),
        source,
    }
}

fn exited(p: &Supervised, status: std::process::ExitStatus) -> ControlPlaneError {
    ControlPlaneError::Exited {
        name: p.name().to_string(),
        status: status.to_string(),
        log: p.log_path().to_path_buf(),
        tail: p.log_tail(LOG_TAIL_LINES),
    }
}

fn timeout(p: &Supervised, what: &str, after: Duration) -> ControlPlaneError {
    ControlPlaneError::Timeout {
        what: what.to_string(),
        secs: after.as_secs(),
        log: p.log_path().to_path_buf(),
        tail: p.log_tail(LOG_TAIL_LINES),
    }
}

async fn wait_for_port(
    p: &mut Supervised,
    port: u16,
    limit: Duration,
) -> Result<(), ControlPlaneError> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = p.exit_status() {
            return Err(exited(p, status));
        }
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(timeout(p, &format!("{} on port {port}", p.name()), limit));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_ready(
    client: &Client,
    apiserver: &mut Supervised,
    limit: Duration,
) -> Result<(), ControlPlaneError> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = apiserver.exit_status() {
            return Err(exited(apiserver, status));
        }
        let request = http_get("/readyz");
        if let Ok(body) = client.request_text(request).await
            && body.trim() == "ok"
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(timeout(apiserver, "kube-apiserver /readyz", limit));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn http_get(path: &'static str) -> http::Request<Vec<u8>> {
    let mut request = http::Request::new(Vec::new());
    *request.uri_mut() = http::Uri::from_static(path);
    request
}

fn write_kubeconfig(path: &Path, server: &str, pki: &Pki) -> Result<(), ControlPlaneError> {
    let yaml = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: {server}
    certificate-authority: {ca}
users:
- name: admin
  user:
    token: {token}
contexts:
- name: local
  context:
    cluster: local
    user: admin
    namespace: default
current-context: local
",
        ca = pki.ca_file.display(),
        token = pki.admin_token,
    );
    std::fs::write(path, yaml).map_err(|source| io("writing the kubeconfig", source))
}

/// A client for the cluster described by a kubeconfig file.
pub async fn client_from_kubeconfig(path: &Path) -> Result<Client, ControlPlaneError> {
    let err = |message: String| ControlPlaneError::Kubeconfig {
        path: path.to_path_buf(),
        message,
    };
    let kubeconfig = Kubeconfig::read_from(path).map_err(|e| err(e.to_string()))?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| err(e.to_string()))?;
    Client::try_from(config).map_err(|e| err(e.to_string()))
}

/// Server-side applies every CustomResourceDefinition in `dir/*.yaml` and waits until each is
/// Established. A missing or empty directory installs nothing.
pub async fn install_crds(client: &Client, dir: &Path) -> Result<(), ControlPlaneError> {
    let err = |message: String| ControlPlaneError::Crd {
        path: dir.to_path_buf(),
        message,
    };
    let files = crate::manifests::yaml_files(dir).map_err(|e| err(e.to_string()))?;
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut names = Vec::new();
    for file in files {
        for doc in crate::manifests::read_documents(&file).map_err(|e| err(e.to_string()))? {
            if doc.get("kind").and_then(|k| k.as_str()) != Some("CustomResourceDefinition") {
                continue;
            }
            let crd: CustomResourceDefinition =
                serde_json::from_value(doc).map_err(|e| err(format!("{}: {e}", file.display())))?;
            let name = crd.metadata.name.clone().unwrap_or_default();
            api.patch(
                &name,
                &PatchParams::apply("mesos-e2e").force(),
                &Patch::Apply(&crd),
            )
            .await
            .map_err(|e| err(format!("{}: {name}: {}", file.display(), api_message(&e))))?;
            names.push(name);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for name in names {
        loop {
            let crd = api
                .get(&name)
                .await
                .map_err(|e| err(format!("{name}: {e}")))?;
            let established = crd
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            if established {
                break;
            }
            if Instant::now() > deadline {
                return Err(err(format!("{name} not Established after 30 s")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// The apiserver's own message for API errors (the full Status is too noisy to read).
pub fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}
