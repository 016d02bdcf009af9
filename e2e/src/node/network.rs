//! Pod networking: one bridge per node runner on a private /24 that overlaps none of the
//! machine's addresses, and per pod a network namespace joined to it by a veth pair. Pods get
//! no default route, so their traffic never leaves the bridge. A cross-process lock file per
//! subnet lets a runner clean up what a killed predecessor left behind.

use std::collections::BTreeSet;
use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("`ip {args}` failed: {message}")]
    Ip { args: String, message: String },
    #[error("cannot run `ip` (install iproute2): {0}")]
    Spawn(std::io::Error),
    #[error("no free 10.244.x.0/24 subnet for the pod bridge (all locked or used)")]
    NoSubnet,
    #[error("the pod subnet {0} is full")]
    Full(String),
    #[error("lock file {path}: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A pod's network namespace and address.
#[derive(Debug, Clone, PartialEq)]
pub struct PodNet {
    pub netns: String,
    pub ip: Ipv4Addr,
    veth: String,
}

impl PodNet {
    /// `/run/netns/<name>`, the namespace file to `setns` into.
    pub fn netns_path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.netns)
    }
}

/// The bridge and address pool of one node runner.
#[derive(Debug)]
pub struct Network {
    index: u8,
    bridge: String,
    gateway: Ipv4Addr,
    used: std::sync::Mutex<BTreeSet<u8>>,
    _lock: File,
}

impl Network {
    pub async fn create() -> Result<Self, NetworkError> {
        let lock_dir = PathBuf::from("/run/mesos-e2e");
        std::fs::create_dir_all(&lock_dir).map_err(|source| NetworkError::Lock {
            path: lock_dir.clone(),
            source,
        })?;
        let taken = host_ipv4_networks().await?;
        for index in 0..=255u8 {
            let path = lock_dir.join(format!("net-{index}.lock"));
            let file = File::create(&path).map_err(|source| NetworkError::Lock {
                path: path.clone(),
                source,
            })?;
            // SAFETY: flock on an fd we own.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                continue;
            }
            let bridge = format!("moe2e{index}");
            // Leftovers of a dead runner on this subnet: its lock is free, so they are stale.
            remove_stale(index, &bridge).await;
            let subnet = Ipv4Addr::new(10, 244, index, 0);
            if taken
                .iter()
                .any(|&(net, len)| overlaps(net, len, subnet, 24))
            {
                continue;
            }
            let gateway = Ipv4Addr::new(10, 244, index, 1);
            ip(&["link", "add", &bridge, "type", "bridge"]).await?;
            ip(&["addr", "add", &format!("{gateway}/24"), "dev", &bridge]).await?;
            ip(&["link", "set", &bridge, "up"]).await?;
            return Ok(Self {
                index,
                bridge,
                gateway,
                used: std::sync::Mutex::new(BTreeSet::new()),
                _lock: file,
            });
        }
        Err(NetworkError::NoSubnet)
    }

    /// The bridge's address: the nodes' host IP and where probes come from.
    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    /// Creates a namespace with `lo` up and `eth0` on the bridge.
    pub async fn add_pod(&self) -> Result<PodNet, NetworkError> {
        let host = {
            let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
            let host = (2..=254u8)
                .find(|h| !used.contains(h))
                .ok_or_else(|| NetworkError::Full(format!("10.244.{}.0/24", self.index)))?;
            used.insert(host);
            host
        };
        let net = PodNet {
            netns: format!("moe2e{}-{host}", self.index),
            ip: Ipv4Addr::new(10, 244, self.index, host),
            veth: format!("moe{}v{host}", self.index),
        };
        if let Err(e) = self.plumb(&net).await {
            self.remove_pod(&net).await;
            return Err(e);
        }
        Ok(net)
    }

    async fn plumb(&self, net: &PodNet) -> Result<(), NetworkError> {
        let peer = format!("{}p", net.veth);
        ip(&["netns", "add", &net.netns]).await?;
        ip(&[
            "link", "add", &net.veth, "type", "veth", "peer", "name", &peer,
        ])
        .await?;
        ip(&["link", "set", &peer, "netns", &net.netns, "name", "eth0"]).await?;
        ip(&["link", "set", &net.veth, "master", &self.bridge, "up"]).await?;
        let ns = ["-n", net.netns.as_str()];
        let cidr = format!("{}/24", net.ip);
        ip(&[&ns[..], &["addr", "add", &cidr, "dev", "eth0"]].concat()).await?;
        ip(&[&ns[..], &["link", "set", "eth0", "up"]].concat()).await?;
        ip(&[&ns[..], &["link", "set", "lo", "up"]].concat()).await?;
        Ok(())
    }

    /// Deletes the namespace (which deletes the veth pair) and frees the address.
    pub async fn remove_pod(&self, net: &PodNet) {
        let _ = ip(&["netns", "delete", &net.netns]).await;
        let _ = ip(&["link", "delete", &net.veth]).await;
        let host = net.ip.octets()[3];
        self.used
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&host);
    }

    /// Cuts the pod off (or reconnects it) by taking its bridge port down (or up).
    pub async fn set_connected(&self, net: &PodNet, connected: bool) -> Result<(), NetworkError> {
        let state = if connected { "up" } else { "down" };
        ip(&["link", "set", &net.veth, state]).await
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // Synchronous: runs during teardown, possibly outside a runtime.
        let _ = std::process::Command::new("ip")
            .args(["link", "delete", &self.bridge])
            .output();
    }
}

async fn remove_stale(index: u8, bridge: &str) {
    let prefix = format!("moe2e{index}-");
    if let Ok(out) = tokio::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .await
    {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let name = line.split_whitespace().next().unwrap_or_default();
            if name.starts_with(&prefix) {
                let _ = ip(&["netns", "delete", name]).await;
            }
        }
    }
    let _ = ip(&["link", "delete", bridge]).await;
}

async fn ip(args: &[&str]) -> Result<(), NetworkError> {
    let out = tokio::process::Command::new("ip")
        .args(args)
        .output()
        .await
        .map_err(NetworkError::Spawn)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetworkError::Ip {
            args: args.join(" "),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Every IPv4 network configured on the machine, as (address, prefix length).
async fn host_ipv4_networks() -> Result<Vec<(Ipv4Addr, u8)>, NetworkError> {
    let out = tokio::process::Command::new("ip")
        .args(["-o", "-4", "addr", "show"])
        .output()
        .await
        .map_err(NetworkError::Spawn)?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .filter(|l| {
            !l.split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .starts_with("moe2e")
        })
        .filter_map(|l| {
            let cidr = l.split_whitespace().skip_while(|w| *w != "inet").nth(1)?;
            let (addr, len) = cidr.split_once('/')?;
            Some((addr.parse().ok()?, len.parse().ok()?))
        })
        .collect())
}

/// Whether two CIDR blocks share an address.
fn overlaps(a: Ipv4Addr, a_len: u8, b: Ipv4Addr, b_len: u8) -> bool {
    let len = a_len.min(b_len).min(32) as u32;
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    (u32::from(a) & mask) == (u32::from(b) & mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_uses_the_shorter_prefix() {
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert!(overlaps(ip("10.0.0.1"), 8, ip("10.244.3.0"), 24));
        assert!(!overlaps(ip("192.0.2.2"), 24, ip("10.244.3.0"), 24));
        assert!(overlaps(ip("10.244.3.77"), 32, ip("10.244.3.0"), 24));
        assert!(!overlaps(ip("10.244.4.1"), 24, ip("10.244.3.0"), 24));
        assert!(overlaps(ip("127.0.0.1"), 0, ip("10.244.3.0"), 24));
    }
}
