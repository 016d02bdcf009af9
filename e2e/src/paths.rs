//! Where the harness finds things: the workspace, the cached Kubernetes binaries, the cargo
//! target dir with the simulators and the operator. Each has an env override for unusual setups.

use std::path::{Path, PathBuf};

/// The Kubernetes release the binaries are built from; must match `e2e/control-plane/build.sh`.
pub const K8S_VERSION: &str = "v1.37.2";

/// The workspace root (the directory holding `crds/`, `samples/` and `target/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Directory of kube-apiserver, kube-controller-manager and kubectl:
/// `$MESOS_OPERATOR_K8S_BIN`, else the per-version cache that `build.sh` fills.
pub fn k8s_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MESOS_OPERATOR_K8S_BIN") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/root/.cache"));
    cache
        .join("mesos-operator/k8s")
        .join(K8S_VERSION)
        .join("bin")
}

/// The script that builds (or finds cached) Kubernetes binaries.
pub fn k8s_build_script() -> PathBuf {
    workspace_root().join("e2e/control-plane/build.sh")
}

/// The cargo target profile dir holding this crate's sibling binaries (simulators, operator):
/// `$MESOS_SIMS_DIR`, else the directory of the running executable's profile (`target/debug`).
pub fn target_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MESOS_SIMS_DIR") {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    // Test executables live in target/<profile>/deps; binaries one level up.
    let from_exe = std::env::current_exe().ok().and_then(|exe| {
        let dir = exe.parent()?;
        let dir = if dir.ends_with("deps") {
            dir.parent()?
        } else {
            dir
        };
        Some(dir.to_path_buf())
    });
    from_exe
        .filter(|d| d.starts_with(&target))
        .unwrap_or_else(|| target.join("debug"))
}

/// Finds `name` on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}
