//! The kubelet's work for one pod: network and volumes, init containers, each container run and
//! restarted with back-off, probes, truthful status, and graceful termination on delete.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Pod, Probe};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::events::EventType;
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

use super::images::Image;
use super::network::PodNet;
use super::sandbox::Sandbox;
use super::{Ctx, env, probes, volumes};
use crate::process::signal_group;

/// What the node runner wants from a pod worker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    Run,
    /// The pod is being deleted: TERM, the grace period, then KILL; then remove the object.
    Delete {
        grace: Duration,
    },
    /// The node died or the runner shuts down: KILL at once, leave the object as it is.
    Kill,
}

/// A container's state as Kubernetes reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    Waiting {
        reason: String,
        message: String,
    },
    Running {
        started: Timestamp,
    },
    Terminated {
        exit_code: i32,
        signal: Option<i32>,
        reason: String,
        /// The tail of the log for `terminationMessagePolicy: FallbackToLogsOnError`.
        message: Option<String>,
        started: Timestamp,
        finished: Timestamp,
    },
}

impl State {
    fn waiting(reason: &str, message: impl Into<String>) -> Self {
        Self::Waiting {
            reason: reason.into(),
            message: message.into(),
        }
    }

    fn json(&self) -> Value {
        match self {
            State::Waiting { reason, message } => {
                json!({"waiting": {"reason": reason, "message": message}})
            }
            State::Running { started } => json!({"running": {"startedAt": Time(*started)}}),
            State::Terminated {
                exit_code,
                signal,
                reason,
                message,
                started,
                finished,
            } => json!({"terminated": {
                "exitCode": exit_code, "signal": signal, "reason": reason, "message": message,
                "startedAt": Time(*started), "finishedAt": Time(*finished)}}),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ContainerRuntime {
    pub name: String,
    pub image: String,
    pub pid: Option<u32>,
    pub state: State,
    pub last_state: Option<State>,
    pub restart_count: i32,
    pub ready: bool,
    pub started: bool,
    ever_started: bool,
    /// Terminated and not restarting (restartPolicy Never/OnFailure).
    done: bool,
}

/// What the runner knows about a pod it runs.
#[derive(Debug)]
pub struct PodRuntime {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub node: String,
    pub hostname: String,
    pub subdomain: Option<String>,
    pub net: Option<PodNet>,
    pub dir: PathBuf,
    pub initialized: bool,
    pub containers: Vec<ContainerRuntime>,
    hosts_written: String,
}

/// A pod's runtime plus a wake-up for its status reporter.
#[derive(Debug)]
pub struct PodState {
    rt: Mutex<PodRuntime>,
    changed: Notify,
}

impl PodState {
    pub fn new(pod: &Pod, node: &str, dir: PathBuf) -> Self {
        let spec = pod.spec.clone().unwrap_or_default();
        let previous: BTreeMap<String, (i32, bool)> = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|s| {
                let ran = s
                    .state
                    .as_ref()
                    .is_some_and(|st| st.running.is_some() || st.terminated.is_some());
                (s.name, (s.restart_count, ran))
            })
            .collect();
        let containers = spec
            .containers
            .iter()
            .map(|c| {
                // A container that already ran (before a node restart) restarts as a new one.
                let (count, ran) = previous.get(&c.name).copied().unwrap_or((0, false));
                ContainerRuntime {
                    name: c.name.clone(),
                    image: c.image.clone().unwrap_or_default(),
                    pid: None,
                    state: State::waiting("ContainerCreating", ""),
                    last_state: None,
                    restart_count: count + i32::from(ran),
                    ready: false,
                    started: false,
                    ever_started: false,
                    done: false,
                }
            })
            .collect();
        let name = pod.metadata.name.clone().unwrap_or_default();
        Self {
            rt: Mutex::new(PodRuntime {
                namespace: pod.metadata.namespace.clone().unwrap_or_default(),
                hostname: spec
                    .hostname
                    .clone()
                    .unwrap_or_else(|| name.chars().take(63).collect()),
                name,
                uid: pod.metadata.uid.clone().unwrap_or_default(),
                node: node.to_string(),
                subdomain: spec.subdomain.clone(),
                net: None,
                dir,
                initialized: false,
                containers,
                hosts_written: String::new(),
            }),
            changed: Notify::new(),
        }
    }

    pub fn read<T>(&self, f: impl FnOnce(&PodRuntime) -> T) -> T {
        f(&self.rt.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn update<T>(&self, f: impl FnOnce(&mut PodRuntime) -> T) -> T {
        let out = f(&mut self.rt.lock().unwrap_or_else(|e| e.into_inner()));
        self.changed.notify_one();
        out
    }

    fn update_container(&self, index: usize, f: impl FnOnce(&mut ContainerRuntime)) {
        self.update(|rt| {
            if let Some(c) = rt.containers.get_mut(index) {
                f(c)
            }
        })
    }

    /// Rewrites the pod's hosts file in place (the bind mount pins its inode) if it changed.
    pub fn write_hosts(&self, entries: &[(std::net::Ipv4Addr, Vec<String>)]) {
        let mut rt = self.rt.lock().unwrap_or_else(|e| e.into_inner());
        let Some(net) = rt.net.clone() else { return };
        let mut text = String::from(
            "# Kubernetes-managed hosts file (mesos-operator e2e node runner).\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
        );
        for (ip, names) in entries {
            let mut names = names.clone();
            if *ip == net.ip {
                names.push(rt.hostname.clone());
            }
            text.push_str(&format!("{ip}\t{}\n", names.join(" ")));
        }
        if text != rt.hosts_written && std::fs::write(rt.dir.join("hosts"), &text).is_ok() {
            rt.hosts_written = text;
        }
    }

    /// This pod's DNS names, for every pod's hosts file.
    pub fn dns_entry(&self) -> Option<(std::net::Ipv4Addr, Vec<String>)> {
        self.read(|rt| {
            let net = rt.net.as_ref()?;
            let mut names = Vec::new();
            if let Some(sub) = &rt.subdomain {
                names.push(format!(
                    "{}.{sub}.{}.svc.cluster.local",
                    rt.hostname, rt.namespace
                ));
            }
            let dashed = net.ip.to_string().replace('.', "-");
            names.push(format!("{dashed}.{}.pod.cluster.local", rt.namespace));
            Some((net.ip, names))
        })
    }
}

/// Runs the pod until told to stop; then cleans up and, on delete, removes the object.
pub async fn run(ctx: Arc<Ctx>, pod: Pod, state: Arc<PodState>, mut stop: watch::Receiver<Stop>) {
    let reporter = tokio::spawn(report(ctx.clone(), pod.clone(), state.clone()));
    let outcome = run_pod(&ctx, &pod, &state, &mut stop).await;
    if let Some(net) = state.update(|rt| rt.net.take()) {
        ctx.network.remove_pod(&net).await;
    }
    reporter.abort();
    let _ = std::fs::remove_dir_all(state.read(|rt| rt.dir.join("volumes")));
    if let Stop::Delete { .. } = outcome {
        finalize(ctx.client.clone(), pod.clone()).await;
    }
    ctx.refresh_hosts();
}

async fn run_pod(
    ctx: &Arc<Ctx>,
    pod: &Pod,
    state: &Arc<PodState>,
    stop: &mut watch::Receiver<Stop>,
) -> Stop {
    let net = loop {
        match ctx.network.add_pod().await {
            Ok(net) => break net,
            Err(e) => set_all_waiting(state, "ContainerCreating", &e.to_string()),
        }
        if let Some(s) = pause(stop, Duration::from_secs(1)).await {
            return s;
        }
    };
    state.update(|rt| rt.net = Some(net.clone()));
    let dir = state.read(|rt| rt.dir.clone());
    let _ = std::fs::create_dir_all(dir.join("logs"));
    let _ = std::fs::write(dir.join("hosts"), "");
    ctx.refresh_hosts();

    let vols = loop {
        match volumes::materialise(&ctx.client, pod, &dir).await {
            Ok(v) => break v,
            Err(e) => set_all_waiting(state, "ContainerCreating", &e.to_string()),
        }
        if let Some(s) = pause(stop, Duration::from_secs(1)).await {
            return s;
        }
    };
    let spec = pod.spec.clone().unwrap_or_default();
    let policy = spec
        .restart_policy
        .clone()
        .unwrap_or_else(|| "Always".into());
    let ip = net.ip.to_string();
    let host_ip = ctx.network.gateway().to_string();
    let run_ctx = RunCtx {
        ctx,
        pod,
        state,
        vols: &vols,
        ip: &ip,
        host_ip: &host_ip,
        dir: &dir,
    };

    for init in spec.init_containers.as_deref().unwrap_or_default() {
        loop {
            let exit = match run_ctx.start(init, None).await {
                Ok((mut child, _)) => tokio::select! {
                    status = child.wait() => status.ok().and_then(|s| s.code()).unwrap_or(-1),
                    s = wait_stop(stop) => {
                        terminate(&mut child, s).await;
                        return s;
                    }
                },
                Err(message) => {
                    set_all_waiting(
                        state,
                        "PodInitializing",
                        &format!("init container {}: {message}", init.name),
                    );
                    -1
                }
            };
            if exit == 0 {
                break;
            }
            set_all_waiting(
                state,
                "PodInitializing",
                &format!("init container {} exited with {exit}", init.name),
            );
            if policy == "Never" {
                return wait_stop(stop).await;
            }
            if let Some(s) = pause(stop, ctx.backoff_base).await {
                return s;
            }
        }
    }
    state.update(|rt| rt.initialized = true);

    let supervisors = spec
        .containers
        .iter()
        .enumerate()
        .map(|(i, c)| supervise(&run_ctx, c, i, &policy, stop.clone()));
    let outcomes = futures::future::join_all(supervisors).await;
    outcomes.into_iter().next().unwrap_or(*stop.borrow())
}

/// Everything needed to start a container of this pod.
struct RunCtx<'a> {
    ctx: &'a Arc<Ctx>,
    pod: &'a Pod,
    state: &'a Arc<PodState>,
    vols: &'a BTreeMap<String, PathBuf>,
    ip: &'a str,
    host_ip: &'a str,
    dir: &'a Path,
}

impl RunCtx<'_> {
    async fn event(&self, type_: EventType, reason: &str, note: String) {
        super::event(&self.ctx.kubelet_events, self.pod, type_, reason, note).await;
    }

    /// Starts the container's process in the pod's sandbox; returns it and its environment.
    async fn start(
        &self,
        c: &Container,
        image: Option<&Image>,
    ) -> Result<(tokio::process::Child, Vec<(String, String)>), String> {
        let resolved;
        let image = match image {
            Some(i) => i,
            None => {
                resolved = self
                    .ctx
                    .images
                    .resolve(c.image.as_deref().unwrap_or_default())
                    .map_err(|e| e.to_string())?;
                &resolved
            }
        };
        let hostname = self.state.read(|rt| rt.hostname.clone());
        let host_path = std::env::var("PATH").unwrap_or_else(|_| {
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()
        });
        let path = match &image.path {
            Some(p) => format!("{}:{host_path}", p.display()),
            None => host_path,
        };
        let mut base = image.env.clone();
        base.extend([
            ("PATH".to_string(), path),
            ("HOSTNAME".to_string(), hostname.clone()),
            ("HOME".to_string(), "/root".to_string()),
        ]);
        let downward = env::Downward {
            pod: self.pod,
            pod_ip: self.ip,
            host_ip: self.host_ip,
        };
        let vars = env::build(&self.ctx.client, c, &base, &downward).await?;
        let expand = |v: &Option<Vec<String>>| -> Vec<String> {
            v.as_deref()
                .unwrap_or_default()
                .iter()
                .map(|a| env::expand(a, &vars))
                .collect()
        };
        let argv = image.argv(&expand(&c.command), &expand(&c.args));
        let Some((program, args)) = argv.split_first() else {
            return Err(
                "no command to run (the image has no entrypoint and the container no command)"
                    .into(),
            );
        };

        let mut binds = vec![(self.dir.join("hosts"), PathBuf::from("/etc/hosts"))];
        for d in &image.dirs {
            let private = self
                .dir
                .join("image")
                .join(&c.name)
                .join(d.trim_start_matches('/'));
            std::fs::create_dir_all(&private).map_err(|e| format!("{}: {e}", private.display()))?;
            binds.push((private, PathBuf::from(d)));
        }
        for m in c.volume_mounts.as_deref().unwrap_or_default() {
            let source = self
                .vols
                .get(&m.name)
                .ok_or_else(|| format!("volumeMount {:?} names no volume", m.name))?;
            let source = match m.sub_path.as_deref().filter(|s| !s.is_empty()) {
                Some(sub) => source.join(sub),
                None => source.clone(),
            };
            binds.push((source, PathBuf::from(&m.mount_path)));
        }
        let sandbox = Sandbox {
            netns: self
                .state
                .read(|rt| rt.net.as_ref().map(|n| n.netns_path()))
                .unwrap_or_default(),
            hostname,
            binds,
            workdir: c.working_dir.as_ref().map(PathBuf::from),
        };
        let log_path = self.dir.join("logs").join(format!("{}.log", c.name));
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("{}: {e}", log_path.display()))?;
        let log_err = log.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .env_clear()
            .envs(vars.iter().cloned())
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let netns = sandbox
            .prepare(&mut cmd)
            .map_err(|e| format!("preparing the sandbox: {e}"))?;
        let child = cmd
            .spawn()
            .map_err(|e| format!("starting {program:?}: {e}"))?;
        drop(netns);
        Ok((child, vars))
    }
}

/// Runs one container for the pod's lifetime: start, probe, restart with back-off.
async fn supervise(
    run: &RunCtx<'_>,
    c: &Container,
    index: usize,
    policy: &str,
    mut stop: watch::Receiver<Stop>,
) -> Stop {
    let state = run.state;
    let image = match run
        .ctx
        .images
        .resolve(c.image.as_deref().unwrap_or_default())
    {
        Ok(i) => i,
        Err(e) => {
            let note = format!("Failed to pull image {:?}: {e}", e.image);
            run.event(EventType::Warning, "Failed", note).await;
            state.update_container(index, |cr| {
                cr.state = State::waiting("ErrImagePull", e.to_string())
            });
            return wait_stop(&mut stop).await;
        }
    };
    let mut crashes = 0u32;
    loop {
        let started_at = Instant::now();
        let mut start_error = None;
        let (exit, signal, started) = match run.start(c, Some(&image)).await {
            Ok((mut child, vars)) => {
                let pid = child.id().unwrap_or_default();
                let started = Timestamp::now();
                state.update_container(index, |cr| {
                    cr.pid = Some(pid);
                    cr.state = State::Running { started };
                    cr.ever_started = true;
                    cr.ready = c.readiness_probe.is_none();
                    cr.started = c.startup_probe.is_none();
                });
                let note = format!("Started container {}", c.name);
                run.event(EventType::Normal, "Started", note).await;
                let ip: std::net::Ipv4Addr =
                    run.ip.parse().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
                let ports = c.ports.clone().unwrap_or_default();
                let target = probes::Target {
                    pod_ip: ip,
                    pid,
                    ports: &ports,
                    env: &vars,
                };
                let outcome = tokio::select! {
                    status = child.wait() => status.ok(),
                    reason = probe_until_kill(c, &target, state, index) => {
                        run.event(EventType::Warning, "Unhealthy", format!("Liveness probe failed: {reason}")).await;
                        let note = format!("Container {} failed liveness probe, will be restarted", c.name);
                        run.event(EventType::Normal, "Killing", note).await;
                        let grace = Duration::from_secs(grace_seconds(run.pod));
                        terminate(&mut child, Stop::Delete { grace }).await
                    }
                    s = wait_stop(&mut stop) => {
                        if let Stop::Delete { .. } = s {
                            run.event(EventType::Normal, "Killing", format!("Stopping container {}", c.name)).await;
                        }
                        terminate(&mut child, s).await;
                        state.update_container(index, |cr| { cr.pid = None; cr.ready = false; });
                        return s;
                    }
                };
                use std::os::unix::process::ExitStatusExt;
                let signal = outcome.and_then(|s| s.signal());
                let code = outcome
                    .and_then(|s| s.code())
                    .unwrap_or_else(|| 128 + signal.unwrap_or(9));
                (code, signal, started)
            }
            Err(message) => {
                run.event(EventType::Warning, "Failed", message.clone())
                    .await;
                start_error = Some(message);
                (128, None, Timestamp::now())
            }
        };
        let finished = Timestamp::now();
        let reason = if exit == 0 { "Completed" } else { "Error" };
        // As the kubelet: a failed container's message falls back to the tail of its log.
        let fallback = c.termination_message_policy.as_deref() == Some("FallbackToLogsOnError");
        let message = (exit != 0 && fallback).then(|| {
            let log = state.read(|rt| rt.dir.join("logs").join(format!("{}.log", c.name)));
            log_tail(&log)
        });
        let terminated = State::Terminated {
            exit_code: exit,
            signal,
            reason: reason.into(),
            message,
            started,
            finished,
        };
        let restart = match policy {
            "Never" => false,
            "OnFailure" => exit != 0,
            _ => true,
        };
        state.update_container(index, |cr| {
            cr.pid = None;
            cr.ready = false;
            cr.started = false;
            if matches!(cr.state, State::Running { .. }) {
                cr.last_state = Some(terminated.clone());
                cr.state = terminated.clone();
            }
            cr.done = !restart;
        });
        if !restart {
            return wait_stop(&mut stop).await;
        }
        if started_at.elapsed() > run.ctx.backoff_max * 2 {
            crashes = 0;
        }
        let backoff = run
            .ctx
            .backoff_base
            .saturating_mul(1 << crashes.min(16))
            .min(run.ctx.backoff_max);
        crashes += 1;
        let mut message = format!(
            "back-off {}s restarting failed container={} pod={}",
            backoff.as_secs_f32(),
            c.name,
            run.pod.metadata.name.as_deref().unwrap_or_default()
        );
        if let Some(e) = &start_error {
            message = format!("{message}: {e}");
        }
        run.event(EventType::Warning, "BackOff", message.clone())
            .await;
        state.update_container(index, |cr| {
            cr.state = State::waiting("CrashLoopBackOff", message)
        });
        if let Some(s) = pause(&mut stop, backoff).await {
            return s;
        }
        state.update_container(index, |cr| cr.restart_count += 1);
    }
}

/// Runs startup, readiness and liveness probes; returns the reason once the container must be
/// killed (startup or liveness failure threshold reached). Never returns otherwise.
async fn probe_until_kill(
    c: &Container,
    target: &probes::Target<'_>,
    state: &PodState,
    index: usize,
) -> String {
    if let Some(startup) = &c.startup_probe {
        if let Err(reason) = probe_loop(startup, target, Kind::Startup, |_| {}).await {
            return reason;
        }
        state.update_container(index, |cr| cr.started = true);
    }
    let readiness = async {
        match &c.readiness_probe {
            Some(p) => {
                let set = |ready: bool| state.update_container(index, |cr| cr.ready = ready);
                let _ = probe_loop(p, target, Kind::Readiness, set).await;
            }
            None => state.update_container(index, |cr| cr.ready = true),
        }
        std::future::pending::<()>().await
    };
    let liveness = async {
        match &c.liveness_probe {
            Some(p) => probe_loop(p, target, Kind::Liveness, |_| {})
                .await
                .err()
                .unwrap_or_default(),
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = readiness => String::new(),
        reason = liveness => reason,
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Startup,
    Readiness,
    Liveness,
}

/// Probes every period, reporting threshold crossings to `on_change`. Startup returns `Ok` on
/// its first success; startup and liveness return `Err` at failureThreshold; readiness never
/// returns (its `on_change(false)` is the effect).
async fn probe_loop(
    probe: &Probe,
    target: &probes::Target<'_>,
    kind: Kind,
    on_change: impl Fn(bool),
) -> Result<(), String> {
    let period = Duration::from_secs(probe.period_seconds.unwrap_or(10).max(1) as u64);
    let success_threshold = probe.success_threshold.unwrap_or(1).max(1);
    let failure_threshold = probe.failure_threshold.unwrap_or(3).max(1);
    tokio::time::sleep(Duration::from_secs(
        probe.initial_delay_seconds.unwrap_or(0).max(0) as u64,
    ))
    .await;
    let (mut successes, mut failures) = (0, 0);
    loop {
        match probes::run(probe, target).await {
            Ok(()) => {
                successes += 1;
                failures = 0;
                if kind == Kind::Startup {
                    return Ok(());
                }
                if successes >= success_threshold {
                    on_change(true);
                }
            }
            Err(e) => {
                failures += 1;
                successes = 0;
                if failures >= failure_threshold {
                    on_change(false);
                    if kind != Kind::Readiness {
                        return Err(e);
                    }
                }
            }
        }
        tokio::time::sleep(period).await;
    }
}

/// The last 80 lines of a log, at most 2 KiB (the kubelet's limits for a fallback message).
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(80)..].join("\n");
    let mut start = tail.len().saturating_sub(2048);
    while !tail.is_char_boundary(start) {
        start += 1;
    }
    tail[start..].to_string()
}

/// Stops a container's process group: TERM and up to the grace period, or KILL at once.
async fn terminate(
    child: &mut tokio::process::Child,
    how: Stop,
) -> Option<std::process::ExitStatus> {
    let Some(pid) = child.id() else {
        return child.try_wait().ok().flatten();
    };
    if let Stop::Delete { grace } = how {
        signal_group(pid, libc::SIGTERM);
        if let Ok(status) = tokio::time::timeout(grace, child.wait()).await {
            signal_group(pid, libc::SIGKILL);
            return status.ok();
        }
    }
    signal_group(pid, libc::SIGKILL);
    child.wait().await.ok()
}

/// Waits until the runner asks the pod to stop (a dropped sender means the runner is gone).
async fn wait_stop(stop: &mut watch::Receiver<Stop>) -> Stop {
    match stop.wait_for(|s| *s != Stop::Run).await {
        Ok(s) => *s,
        Err(_) => Stop::Kill,
    }
}

/// Sleeps `d` unless asked to stop first.
async fn pause(stop: &mut watch::Receiver<Stop>, d: Duration) -> Option<Stop> {
    tokio::select! {
        _ = tokio::time::sleep(d) => None,
        s = wait_stop(stop) => Some(s),
    }
}

fn set_all_waiting(state: &PodState, reason: &str, message: &str) {
    state.update(|rt| {
        for c in &mut rt.containers {
            c.state = State::waiting(reason, message);
        }
    });
}

/// The grace period of a deletion: the one the deletion set, else the pod's own, else 30 s.
pub fn grace_seconds(pod: &Pod) -> u64 {
    pod.metadata
        .deletion_grace_period_seconds
        .or(pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds))
        .unwrap_or(30)
        .max(0) as u64
}

/// Removes the pod object once its processes are gone, as the kubelet does.
pub async fn finalize(client: kube::Client, pod: Pod) {
    let api: Api<Pod> = Api::namespaced(
        client,
        pod.metadata.namespace.as_deref().unwrap_or("default"),
    );
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: pod.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    if let Err(e) = api
        .delete(pod.metadata.name.as_deref().unwrap_or_default(), &params)
        .await
    {
        tracing::debug!(error = %e, "finalizing pod deletion");
    }
}

/// Patches the pod's status whenever the runtime changes (and at least every 2 s).
async fn report(ctx: Arc<Ctx>, pod: Pod, state: Arc<PodState>) {
    let api: Api<Pod> = Api::namespaced(
        ctx.client.clone(),
        pod.metadata.namespace.as_deref().unwrap_or("default"),
    );
    let name = pod.metadata.name.clone().unwrap_or_default();
    let start_time = Time(Timestamp::now());
    let host_ip = ctx.network.gateway().to_string();
    let mut transitions: BTreeMap<&'static str, (bool, Timestamp)> = BTreeMap::new();
    let mut last = Value::Null;
    loop {
        let status = state.read(|rt| status_json(rt, &host_ip, &start_time, &mut transitions));
        if status != last {
            match api
                .patch_status(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": status})),
                )
                .await
            {
                Ok(_) => last = status,
                Err(e) => tracing::debug!(pod = %name, error = %e, "status update"),
            }
        }
        tokio::select! {
            _ = state.changed.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

fn status_json(
    rt: &PodRuntime,
    host_ip: &str,
    start_time: &Time,
    transitions: &mut BTreeMap<&'static str, (bool, Timestamp)>,
) -> Value {
    let containers_ready = !rt.containers.is_empty() && rt.containers.iter().all(|c| c.ready);
    let all_done = !rt.containers.is_empty() && rt.containers.iter().all(|c| c.done);
    let phase = if all_done {
        let ok = rt
            .containers
            .iter()
            .all(|c| matches!(c.state, State::Terminated { exit_code: 0, .. }));
        if ok { "Succeeded" } else { "Failed" }
    } else if rt.initialized && rt.containers.iter().all(|c| c.ever_started) {
        "Running"
    } else {
        "Pending"
    };
    let mut condition = |kind: &'static str, ok: bool| {
        let entry = transitions.entry(kind).or_insert((ok, Timestamp::now()));
        if entry.0 != ok {
            *entry = (ok, Timestamp::now());
        }
        json!({"type": kind, "status": if ok {"True"} else {"False"}, "lastTransitionTime": Time(entry.1)})
    };
    let conditions = vec![
        condition("PodReadyToStartContainers", rt.net.is_some()),
        condition("Initialized", rt.initialized),
        condition("ContainersReady", containers_ready),
        condition("Ready", containers_ready),
        condition("PodScheduled", true),
    ];
    let statuses: Vec<Value> = rt
        .containers
        .iter()
        .map(|c| {
            json!({
                "name": c.name, "image": c.image, "imageID": format!("local://{}", c.image),
                "containerID": c.pid.map(|p| format!("local://{p}")),
                "ready": c.ready, "started": c.started, "restartCount": c.restart_count,
                "state": c.state.json(),
                "lastState": c.last_state.as_ref().map(State::json).unwrap_or_else(|| json!({})),
            })
        })
        .collect();
    let ip = rt.net.as_ref().map(|n| n.ip.to_string());
    json!({
        "phase": phase,
        "conditions": conditions,
        "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
        "podIP": ip, "podIPs": ip.as_ref().map(|ip| vec![json!({"ip": ip})]).unwrap_or_default(),
        "startTime": start_time,
        "containerStatuses": statuses,
    })
}
