//! Tasks run as real child processes (`/bin/sh -c <cmd>` in a sandbox directory), each
//! in its own process group, which is killed when the agent dies, so a killed agent
//! really loses its tasks.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::resources::{Resource, Value as RValue};

/// A launch request (simulator-internal protocol; Marathon's stand-in sends it).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskSpec {
    pub task_id: String,
    pub name: String,
    pub framework_id: String,
    pub framework_name: String,
    pub command: String,
    /// v1 `Resource` JSON; ports ranges become `PORT0..` in the environment.
    pub resources: Vec<Value>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum TaskState {
    #[serde(rename = "TASK_RUNNING")]
    Running,
    #[serde(rename = "TASK_KILLING")]
    Killing,
    #[serde(rename = "TASK_FINISHED")]
    Finished,
    #[serde(rename = "TASK_FAILED")]
    Failed,
    #[serde(rename = "TASK_KILLED")]
    Killed,
}

impl TaskState {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Finished | TaskState::Failed | TaskState::Killed
        )
    }
}

struct Task {
    spec: TaskSpec,
    state: TaskState,
    pid: Option<u32>,
    started_at: f64,
    message: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("Task '{0}' already exists")]
    Duplicate(String),
    #[error("Insufficient resources for task '{0}': {1}")]
    Insufficient(String, String),
    #[error("Failed to launch task '{0}': {1}")]
    Spawn(String, String),
}

/// `sh -c TASK_WRAPPER mesos-task <command>`: runs the command in the background and
/// exits with its status; on SIGHUP (the agent died) kills the task's process group.
const TASK_WRAPPER: &str = r#"trap 'kill -KILL 0' HUP; /bin/sh -c "$1" & wait $!"#;

pub struct Tasks {
    sandboxes: PathBuf,
    total: Vec<Resource>,
    tasks: Mutex<BTreeMap<String, Task>>,
}

fn scalar(rs: &[Resource], name: &str) -> f64 {
    rs.iter()
        .filter(|r| r.name == name)
        .map(|r| {
            if let RValue::Scalar(v) = r.value {
                v
            } else {
                0.0
            }
        })
        .sum()
}

fn parse(resources: &[Value]) -> Vec<Resource> {
    resources
        .iter()
        .filter_map(|r| Resource::from_v1(r, "*").ok())
        .collect()
}

impl Tasks {
    pub fn new(sandboxes: PathBuf, total: Vec<Resource>) -> Arc<Tasks> {
        Arc::new(Tasks {
            sandboxes,
            total,
            tasks: Mutex::new(BTreeMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Task>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Resources of tasks that are not terminal.
    pub fn used(&self) -> Vec<Resource> {
        self.lock()
            .values()
            .filter(|t| !t.state.is_terminal())
            .flat_map(|t| parse(&t.spec.resources))
            .collect()
    }

    /// Checks scalars fit and MOUNT disks are whole and unused.
    fn admit(&self, spec: &TaskSpec) -> Result<(), LaunchError> {
        let wanted = parse(&spec.resources);
        let used = self.used();
        for name in ["cpus", "mem", "disk", "gpus"] {
            let (w, u, t) = (
                scalar(&wanted, name),
                scalar(&used, name),
                scalar(&self.total, name),
            );
            if w > 0.0 && u + w > t + 1e-9 {
                return Err(LaunchError::Insufficient(
                    spec.task_id.clone(),
                    format!("{name}: want {w}, {u} of {t} used"),
                ));
            }
        }
        for w in wanted
            .iter()
            .filter(|r| r.disk_source().is_some_and(|s| s.kind == "MOUNT"))
        {
            let offered = self
                .total
                .iter()
                .any(|t| t.disk == w.disk && t.value == w.value);
            let busy = used.iter().any(|u| u.disk == w.disk);
            if !offered || busy {
                return Err(LaunchError::Insufficient(
                    spec.task_id.clone(),
                    "MOUNT disk not available".into(),
                ));
            }
        }
        Ok(())
    }

    pub fn launch(self: &Arc<Self>, spec: TaskSpec) -> Result<(), LaunchError> {
        if self
            .lock()
            .get(&spec.task_id)
            .is_some_and(|t| !t.state.is_terminal())
        {
            return Err(LaunchError::Duplicate(spec.task_id));
        }
        self.admit(&spec)?;
        let sandbox = self.sandboxes.join(&spec.task_id);
        std::fs::create_dir_all(&sandbox)
            .map_err(|e| LaunchError::Spawn(spec.task_id.clone(), e.to_string()))?;
        // The command runs under a wrapper shell that leads the task's process group and
        // gets SIGHUP when the agent dies (PR_SET_PDEATHSIG); it then SIGKILLs the whole
        // group, grandchildren included. A kill (SIGTERM to the group) still reaches the
        // command itself, so it can terminate gracefully within the grace period.
        let mut cmd = tokio::process::Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(TASK_WRAPPER)
            .arg("mesos-task")
            .arg(&spec.command)
            .current_dir(&sandbox)
            .envs(&spec.env);
        cmd.env("MESOS_TASK_ID", &spec.task_id)
            .env("MESOS_SANDBOX", &sandbox);
        let ports = parse(&spec.resources)
            .into_iter()
            .filter_map(|r| {
                if let RValue::Ranges(rs) = r.value {
                    Some(rs)
                } else {
                    None
                }
            })
            .flatten()
            .flat_map(|r| r.begin..=r.end);
        for (i, port) in ports.enumerate() {
            cmd.env(format!("PORT{i}"), port.to_string());
            if i == 0 {
                cmd.env("PORT", port.to_string());
            }
        }
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::setpgid(0, 0);
                // A shell cannot trap a signal ignored when it starts (POSIX), and an agent
                // started under `nohup` passes SIGHUP on ignored: the task would outlive it.
                libc::signal(libc::SIGHUP, libc::SIG_DFL);
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGHUP);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| LaunchError::Spawn(spec.task_id.clone(), e.to_string()))?;
        let id = spec.task_id.clone();
        self.lock().insert(
            id.clone(),
            Task {
                pid: child.id(),
                spec,
                state: TaskState::Running,
                started_at: crate::master::now_secs(),
                message: None,
            },
        );
        let tasks = self.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            let mut all = tasks.lock();
            if let Some(t) = all.get_mut(&id) {
                t.pid = None;
                t.state = match (t.state, status.as_ref().map(|s| s.code())) {
                    (TaskState::Killing, _) => TaskState::Killed,
                    (_, Ok(Some(0))) => TaskState::Finished,
                    _ => TaskState::Failed,
                };
                t.message = Some(format!("Command exited with {status:?}"));
            }
        });
        Ok(())
    }

    /// SIGTERM to the task's process group, SIGKILL after `grace`.
    pub fn kill(self: &Arc<Self>, id: &str, grace: Duration) -> bool {
        let pid = {
            let mut all = self.lock();
            let Some(t) = all.get_mut(id).filter(|t| !t.state.is_terminal()) else {
                return false;
            };
            t.state = TaskState::Killing;
            t.pid
        };
        if let Some(pid) = pid {
            let pgid = pid as libc::pid_t;
            // SAFETY: plain syscall on a process group this agent created.
            unsafe { libc::kill(-pgid, libc::SIGTERM) };
            let tasks = self.clone();
            let id = id.to_string();
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                if tasks.lock().get(&id).is_some_and(|t| t.pid.is_some()) {
                    // SAFETY: as above.
                    unsafe { libc::kill(-pgid, libc::SIGKILL) };
                }
            });
        }
        true
    }

    pub fn kill_all(self: &Arc<Self>, grace: Duration) {
        let ids: Vec<String> = self.lock().keys().cloned().collect();
        for id in ids {
            self.kill(&id, grace);
        }
    }

    pub fn active(&self) -> usize {
        self.lock()
            .values()
            .filter(|t| !t.state.is_terminal())
            .count()
    }

    pub fn count(&self, state: TaskState) -> usize {
        self.lock().values().filter(|t| t.state == state).count()
    }

    /// Tasks as Mesos' `Task` JSON (also what the agent reports to the master).
    pub fn to_json(&self, agent_id: &str) -> Vec<Value> {
        self.lock()
            .values()
            .map(|t| {
                json!({
                    "id": t.spec.task_id, "name": t.spec.name, "framework_id": t.spec.framework_id,
                    "framework_name": t.spec.framework_name, "executor_id": "", "slave_id": agent_id,
                    "state": t.state, "resources": t.spec.resources, "pid": t.pid,
                    "statuses": [{"state": t.state, "timestamp": t.started_at, "message": t.message}],
                })
            })
            .collect()
    }
}
