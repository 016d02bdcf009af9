//! Starting a container's process inside its pod: the pod's network namespace, a private mount
//! namespace with the pod's /etc/hosts and volumes bind-mounted, its own UTS namespace with the
//! pod's hostname. All set up between fork and exec, so no helper binary is involved.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Where a container runs.
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub netns: PathBuf,
    pub hostname: String,
    /// (source on the host, target inside the container), mounted in order.
    pub binds: Vec<(PathBuf, PathBuf)>,
    pub workdir: Option<PathBuf>,
}

impl Sandbox {
    /// Prepares `cmd` to enter the sandbox in the child. Returns the namespace file, which must
    /// stay open until the child has been spawned.
    pub fn prepare(&self, cmd: &mut tokio::process::Command) -> io::Result<File> {
        let netns = File::open(&self.netns)?;
        let netns_fd = netns.as_raw_fd();
        for (source, target) in &self.binds {
            ensure_mount_point(source, target)?;
        }
        let binds: Vec<(CString, CString)> = self
            .binds
            .iter()
            .map(|(s, t)| Ok((cstring(s)?, cstring(t)?)))
            .collect::<io::Result<_>>()?;
        let hostname = self.hostname.clone().into_bytes();
        let workdir = self.workdir.as_deref().map(cstring).transpose()?;
        let root = CString::new("/").map_err(io::Error::other)?;
        // SAFETY: the closure only makes syscalls on data prepared above (no allocation).
        unsafe {
            cmd.pre_exec(move || {
                crate::process::bind_to_parent()?;
                check(libc::setns(netns_fd, libc::CLONE_NEWNET))?;
                check(libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWUTS))?;
                // Private propagation first, so nothing mounted below reaches the host.
                check(libc::mount(
                    std::ptr::null(),
                    root.as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ))?;
                for (source, target) in &binds {
                    check(libc::mount(
                        source.as_ptr(),
                        target.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND | libc::MS_REC,
                        std::ptr::null(),
                    ))?;
                }
                check(libc::sethostname(hostname.as_ptr().cast(), hostname.len()))?;
                if let Some(dir) = &workdir {
                    check(libc::chdir(dir.as_ptr()))?;
                }
                Ok(())
            });
        }
        Ok(netns)
    }
}

/// A command run inside a running container's namespaces (exec probes, `kubectl exec`-like).
pub fn exec_command(pid: u32, argv: &[String]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("nsenter");
    cmd.arg(format!("--target={pid}"))
        .args(["--net", "--mount", "--uts", "--"])
        .args(argv)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    cmd
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)
}

/// Bind targets must exist. Missing ones are created on the host as empty directories (or
/// files): the mounts themselves only ever exist in the pod's private mount namespace.
fn ensure_mount_point(source: &Path, target: &Path) -> io::Result<()> {
    if target.exists() {
        return Ok(());
    }
    if source.is_dir() {
        std::fs::create_dir_all(target)
    } else {
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        File::create(target).map(drop)
    }
}
