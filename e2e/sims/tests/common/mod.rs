//! Helpers for the simulator tests: processes killed on drop, HTTP polling.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mesos_sims::http_client::HttpClient;
use serde_json::Value;

/// Heavy tests (several JVMs and simulators) run one at a time on 2 cores.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A simulator process, SIGKILLed on drop; its stderr goes to `<log>`.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(bin: &str, args: &[String], log: &Path) -> Proc {
        Proc::spawn_with_env(bin, args, &[], log)
    }

    /// [`Proc::spawn`] with extra environment variables.
    pub fn spawn_with_env(bin: &str, args: &[String], env: &[(&str, &str)], log: &Path) -> Proc {
        let file = std::fs::File::create(log).unwrap();
        let child = Command::new(bin)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        Proc {
            child,
            log: log.to_path_buf(),
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the process to exit by itself; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn free_port() -> u16 {
    mesos_sims::zk_ensemble::free_port().unwrap()
}

pub async fn get(url: &str) -> Option<mesos_sims::http_client::Response> {
    HttpClient::default()
        .get(url, Duration::from_secs(3))
        .await
        .ok()
}

pub async fn post(url: &str, body: &Value) -> Option<mesos_sims::http_client::Response> {
    HttpClient::default()
        .post(url, body, Duration::from_secs(10))
        .await
        .ok()
}

pub async fn metrics(port: u16) -> Option<Value> {
    get(&format!("http://127.0.0.1:{port}/metrics/snapshot"))
        .await?
        .json()
}

pub async fn metric(port: u16, key: &str) -> Option<f64> {
    metrics(port).await?.get(key)?.as_f64()
}

/// Polls `f` every 200 ms until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A mesos-master-sim on 127.0.0.1:`port` in `work_dir`.
pub struct MasterSpec {
    pub zk: String,
    pub port: u16,
    pub quorum: usize,
    pub work_dir: PathBuf,
    pub extra: Vec<String>,
}

impl MasterSpec {
    pub fn start(&self) -> Proc {
        std::fs::create_dir_all(&self.work_dir).unwrap();
        let mut args = vec![
            format!("--zk={}", self.zk),
            format!("--quorum={}", self.quorum),
            format!("--work_dir={}", self.work_dir.display()),
            "--ip=127.0.0.1".to_string(),
            format!("--port={}", self.port),
            "--zk_session_timeout=2secs".to_string(),
            "--registry_fetch_timeout=30secs".to_string(),
            "--registry_store_timeout=10secs".to_string(),
        ];
        // Flags in `extra` replace the defaults above (stout rejects duplicates).
        let name = |a: &str| a.split('=').next().unwrap_or_default().to_string();
        args.retain(|a| !self.extra.iter().any(|e| name(e) == name(a)));
        args.extend(self.extra.iter().cloned());
        let log = self.work_dir.with_extension(format!("log-{}", unique()));
        Proc::spawn(env!("CARGO_BIN_EXE_mesos-master-sim"), &args, &log)
    }
}

fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Ports of the masters reporting `master/elected` = 1.
pub async fn elected(ports: &[u16]) -> Vec<u16> {
    let mut out = Vec::new();
    for &p in ports {
        if metric(p, "master/elected").await == Some(1.0) {
            out.push(p);
        }
    }
    out
}

/// Waits until exactly one of `ports` leads and its operator API answers (registrar
/// recovered); returns the leader's port.
pub async fn serving_leader(ports: &[u16], timeout: Duration) -> u16 {
    eventually(timeout, "a single serving leader", || async {
        let leaders = elected(ports).await;
        if leaders.len() != 1 {
            return None;
        }
        let r = post(
            &format!("http://127.0.0.1:{}/api/v1", leaders[0]),
            &serde_json::json!({"type": "GET_HEALTH"}),
        )
        .await?;
        (r.status == 200).then_some(leaders[0])
    })
    .await
}

pub async fn all_recovered(ports: &[u16], timeout: Duration) {
    for &p in ports {
        eventually(
            timeout,
            &format!("registrar/log/recovered on {p}"),
            || async { (metric(p, "registrar/log/recovered").await? == 1.0).then_some(()) },
        )
        .await;
    }
}

/// A scratch directory, removed at the end unless `SIMS_KEEP_DIRS` is set (then its
/// path is printed, for reading the simulators' logs after a failure).
pub struct TestDir {
    _dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl TestDir {
    pub fn new() -> TestDir {
        let dir = tempfile::tempdir().unwrap();
        if std::env::var_os("SIMS_KEEP_DIRS").is_some() {
            let path = dir.keep();
            eprintln!("keeping {}", path.display());
            return TestDir { _dir: None, path };
        }
        TestDir {
            path: dir.path().to_path_buf(),
            _dir: Some(dir),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A standalone ZooKeeper server and one mesos-master-sim (`--quorum=1`) serving under
/// `/mesos`.
pub struct SingleMaster {
    pub master: MasterSpec,
    pub zk_url: String,
    _proc: Proc,
    pub zk: mesos_sims::zk_ensemble::ZkEnsemble,
}

impl SingleMaster {
    pub async fn start(dir: &Path) -> SingleMaster {
        let zk = mesos_sims::zk_ensemble::ZkEnsemble::start(1, dir, 500).unwrap();
        let zk_url = format!("zk://{}/mesos", zk.connect_string());
        let master = MasterSpec {
            zk: zk_url.clone(),
            port: free_port(),
            quorum: 1,
            work_dir: dir.join("m"),
            extra: vec![],
        };
        let proc = master.start();
        serving_leader(&[master.port], Duration::from_secs(30)).await;
        SingleMaster {
            master,
            zk_url,
            _proc: proc,
            zk,
        }
    }
}

/// A mesos-agent-sim on 127.0.0.1 with `--hostname=<name>`, registering with `master`
/// (`zk://…/mesos`); returns it and its port.
pub fn spawn_agent(dir: &Path, name: &str, master: &str, resources: &str) -> (Proc, u16) {
    let port = free_port();
    let args = vec![
        format!("--master={master}"),
        format!("--work_dir={}", dir.join(name).display()),
        "--ip=127.0.0.1".into(),
        format!("--port={port}"),
        format!("--resources={resources}"),
        format!("--hostname={name}"),
    ];
    let log = dir.join(format!("{name}.log"));
    (
        Proc::spawn(env!("CARGO_BIN_EXE_mesos-agent-sim"), &args, &log),
        port,
    )
}

/// An HA marathon-sim on 127.0.0.1:`port` for the Mesos at `mesos`, state under
/// `zk://<zk>/marathon`.
pub fn spawn_marathon(dir: &Path, name: &str, mesos: &str, zk: &str, port: u16) -> Proc {
    let args: Vec<String> = [
        format!("--master={mesos}"),
        format!("--zk=zk://{zk}/marathon"),
        format!("--http_port={port}"),
        "--http_address=127.0.0.1".into(),
        "--hostname=127.0.0.1".into(),
        "--zk_session_timeout=2000".into(),
    ]
    .to_vec();
    let log = dir.join(format!("{name}.log"));
    Proc::spawn(env!("CARGO_BIN_EXE_marathon-sim"), &args, &log)
}

/// The port of the Marathon leader every one of `ports` names.
pub async fn marathon_leader(ports: &[u16], timeout: Duration) -> u16 {
    eventually(timeout, "one Marathon leader", || async {
        let mut named = Vec::new();
        for p in ports {
            let r = get(&format!("http://127.0.0.1:{p}/v2/leader")).await?;
            named.push(r.json()?["leader"].as_str()?.to_string());
        }
        named.dedup();
        match named.as_slice() {
            [one] => one.rsplit(':').next()?.parse().ok(),
            _ => None,
        }
    })
    .await
}

/// `method url` with an optional JSON body (any status is an answer).
pub async fn send(
    method: &str,
    url: &str,
    body: Option<&Value>,
) -> mesos_sims::http_client::Response {
    let method = hyper::Method::from_bytes(method.as_bytes()).unwrap();
    HttpClient::default()
        .send(method, url, body, Duration::from_secs(15))
        .await
        .unwrap()
}
