//! Child processes that cannot outlive the harness: each runs in its own process group (so a
//! stop reaches its children too) and gets SIGKILL from the kernel when the thread that spawned
//! it dies (`PR_SET_PDEATHSIG`), which covers a test process that panics or is killed.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot start {name} ({program}): {source}")]
    Spawn {
        name: String,
        program: String,
        source: io::Error,
    },
    #[error("cannot create log file {path}: {source}")]
    Log { path: PathBuf, source: io::Error },
}

/// To be called between fork and exec (inside `pre_exec`): a new session/process group, and
/// SIGKILL when the parent thread dies. Only async-signal-safe syscalls.
///
/// # Safety
/// Must only be called in a freshly forked child before exec.
pub unsafe fn bind_to_parent() -> io::Result<()> {
    // SAFETY: plain syscalls without allocation, valid in a forked child.
    unsafe {
        if libc::setsid() < 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Sends `signal` to the whole process group led by `pid` (ignores "no such process").
pub fn signal_group(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) with a negative pid addresses a process group; no memory is touched.
    unsafe {
        libc::kill(-(pid as libc::pid_t), signal);
    }
}

/// A long-running child with its output in a log file; stopped (TERM, then KILL) on drop.
#[derive(Debug)]
pub struct Supervised {
    name: String,
    child: Child,
    log: PathBuf,
    exited: Option<ExitStatus>,
}

impl Supervised {
    /// Spawns `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Self, ProcessError> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|source| ProcessError::Log {
                path: log.to_path_buf(),
                source,
            })?;
        let err = out.try_clone().map_err(|source| ProcessError::Log {
            path: log.to_path_buf(),
            source,
        })?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        // SAFETY: bind_to_parent only makes async-signal-safe syscalls.
        unsafe {
            cmd.pre_exec(|| bind_to_parent());
        }
        let child = cmd.spawn().map_err(|source| ProcessError::Spawn {
            name: name.to_string(),
            program: cmd.get_program().to_string_lossy().into_owned(),
            source,
        })?;
        Ok(Self {
            name: name.to_string(),
            child,
            log: log.to_path_buf(),
            exited: None,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The exit status if the process has ended (reaps it).
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    /// SIGTERM to the group, up to `grace` for it to exit, then SIGKILL; always reaps.
    pub fn stop(&mut self, grace: Duration) {
        if self.exit_status().is_some() {
            return;
        }
        signal_group(self.pid(), libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.exit_status().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Also reaches grandchildren left in the group after the leader exited.
        signal_group(self.pid(), libc::SIGKILL);
        if self.exited.is_none() {
            self.exited = self.child.wait().ok();
        }
    }

    /// The last `lines` lines of the log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

/// The last `lines` lines of a log file (reads at most the last 64 KiB).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut buf = Vec::new();
    let _ = file.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
