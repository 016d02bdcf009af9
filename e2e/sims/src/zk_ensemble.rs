//! Real ZooKeeper servers (Debian's `zookeeper` package) for tests: generates a static
//! ensemble configuration (`zoo.cfg` + `myid`), starts `QuorumPeerMain` on loopback ports
//! and stops the servers on drop.
//!
//! Readiness is `srvr` reporting a `Mode:` line: `ruok` answers as soon as the port is
//! bound, long before the server has joined a quorum and serves requests.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian installs the server; its manifest pulls in the dependencies.
pub const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";

/// One member of a static ensemble as every server's `zoo.cfg` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub id: u8,
    pub host: String,
    pub quorum_port: u16,
    pub election_port: u16,
}

/// Settings of one server's `zoo.cfg`.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub tick_time_ms: u32,
    pub init_limit: u32,
    pub sync_limit: u32,
    pub data_dir: PathBuf,
    pub client_address: String,
    pub client_port: u16,
    /// All members, this server included; empty for a standalone server.
    pub members: Vec<Member>,
}

impl ServerConfig {
    /// The `zoo.cfg` text: four-letter words needed by health checks whitelisted,
    /// the AdminServer off (it would take port 8080, Marathon's default).
    pub fn zoo_cfg(&self) -> String {
        let mut cfg = format!(
            "tickTime={}\ninitLimit={}\nsyncLimit={}\ndataDir={}\nclientPortAddress={}\nclientPort={}\n\
             4lw.commands.whitelist=srvr,mntr,ruok,conf\nadmin.enableServer=false\n\
             standaloneEnabled=true\nreconfigEnabled=false\n",
            self.tick_time_ms,
            self.init_limit,
            self.sync_limit,
            self.data_dir.display(),
            self.client_address,
            self.client_port
        );
        for m in &self.members {
            cfg.push_str(&format!(
                "server.{}={}:{}:{}\n",
                m.id, m.host, m.quorum_port, m.election_port
            ));
        }
        cfg
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EnsembleError {
    #[error("I/O error on {0}: {1}")]
    Io(String, std::io::Error),
    #[error("ZooKeeper server {id} did not serve within {secs}s; log: {log}")]
    NotServing { id: u8, secs: u64, log: String },
    #[error("no such server {0}")]
    NoSuchServer(u8),
}

struct Server {
    config: ServerConfig,
    id: u8,
    dir: PathBuf,
    child: Option<Child>,
}

/// A running ensemble of real ZooKeeper servers on 127.0.0.1, stopped on drop.
pub struct ZkEnsemble {
    servers: Vec<Server>,
}

/// Asks the OS for a currently free loopback port.
pub fn free_port() -> Result<u16, EnsembleError> {
    let l = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| EnsembleError::Io("bind 127.0.0.1:0".into(), e))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| EnsembleError::Io("local_addr".into(), e))
}

/// Sends a four-letter word and returns the reply (empty if the server did not answer).
pub fn four_letter_word(addr: &str, word: &str) -> String {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut out = String::new();
    if s.write_all(word.as_bytes()).is_ok() {
        let _ = s.read_to_string(&mut out);
    }
    out
}

impl ZkEnsemble {
    /// Starts `n` servers (n = 1 gives a standalone server) under `base` and waits until
    /// every one serves. `tick_time_ms` bounds the session timeouts clients may negotiate
    /// (2 to 20 ticks).
    pub fn start(n: u8, base: &Path, tick_time_ms: u32) -> Result<ZkEnsemble, EnsembleError> {
        let mut members = Vec::new();
        for id in 1..=n {
            members.push(Member {
                id,
                host: "127.0.0.1".into(),
                quorum_port: free_port()?,
                election_port: free_port()?,
            });
        }
        if n == 1 {
            members.clear();
        }
        let mut servers = Vec::new();
        for id in 1..=n {
            let dir = base.join(format!("zk{id}"));
            let config = ServerConfig {
                tick_time_ms,
                init_limit: 10,
                sync_limit: 5,
                data_dir: dir.join("data"),
                client_address: "127.0.0.1".into(),
                client_port: free_port()?,
                members: members.clone(),
            };
            servers.push(Server {
                config,
                id,
                dir,
                child: None,
            });
        }
        let mut ensemble = ZkEnsemble { servers };
        for id in 1..=n {
            ensemble.start_server(id)?;
        }
        for id in 1..=n {
            ensemble.wait_serving(id, Duration::from_secs(30))?;
        }
        Ok(ensemble)
    }

    /// `host:port,...` for a client (and for a `zk://` URL).
    pub fn connect_string(&self) -> String {
        self.servers
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.config.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn client_address(&self, id: u8) -> Result<String, EnsembleError> {
        Ok(format!("127.0.0.1:{}", self.server(id)?.config.client_port))
    }

    fn server(&self, id: u8) -> Result<&Server, EnsembleError> {
        self.servers
            .iter()
            .find(|s| s.id == id)
            .ok_or(EnsembleError::NoSuchServer(id))
    }

    fn server_mut(&mut self, id: u8) -> Result<&mut Server, EnsembleError> {
        self.servers
            .iter_mut()
            .find(|s| s.id == id)
            .ok_or(EnsembleError::NoSuchServer(id))
    }

    /// Writes the config and `myid` and spawns the JVM (no waiting).
    pub fn start_server(&mut self, id: u8) -> Result<(), EnsembleError> {
        let server = self.server_mut(id)?;
        let io = |what: &Path| {
            let what = what.display().to_string();
            move |e| EnsembleError::Io(what, e)
        };
        std::fs::create_dir_all(&server.config.data_dir).map_err(io(&server.config.data_dir))?;
        let myid = server.config.data_dir.join("myid");
        std::fs::write(&myid, format!("{id}\n")).map_err(io(&myid))?;
        let cfg = server.dir.join("zoo.cfg");
        std::fs::write(&cfg, server.config.zoo_cfg()).map_err(io(&cfg))?;
        let log_path = server.dir.join("server.log");
        let log = std::fs::File::create(&log_path).map_err(io(&log_path))?;
        let log2 = log.try_clone().map_err(io(&log_path))?;
        let child = Command::new("java")
            .args([
                "-Xmx128m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-cp",
                ZOOKEEPER_JAR,
            ])
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(io(Path::new("java")))?;
        server.child = Some(child);
        Ok(())
    }

    /// Kills one server (SIGKILL), as a crash would.
    pub fn kill_server(&mut self, id: u8) -> Result<(), EnsembleError> {
        let server = self.server_mut(id)?;
        if let Some(mut child) = server.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        Ok(())
    }

    /// Waits until `srvr` reports a `Mode:` line, i.e. the server serves requests.
    pub fn wait_serving(&self, id: u8, timeout: Duration) -> Result<(), EnsembleError> {
        let server = self.server(id)?;
        let addr = format!("127.0.0.1:{}", server.config.client_port);
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if four_letter_word(&addr, "srvr").contains("Mode: ") {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let log = std::fs::read_to_string(server.dir.join("server.log")).unwrap_or_default();
        let tail: String = log
            .chars()
            .rev()
            .take(2000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        Err(EnsembleError::NotServing {
            id,
            secs: timeout.as_secs(),
            log: tail,
        })
    }
}

impl Drop for ZkEnsemble {
    fn drop(&mut self) {
        for s in &mut self.servers {
            if let Some(mut child) = s.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoo_cfg_lists_every_member_and_whitelists_health_words() {
        let cfg = ServerConfig {
            tick_time_ms: 500,
            init_limit: 10,
            sync_limit: 5,
            data_dir: "/d".into(),
            client_address: "127.0.0.1".into(),
            client_port: 2181,
            members: (1..=3)
                .map(|id| Member {
                    id,
                    host: format!("zk-{id}"),
                    quorum_port: 2888,
                    election_port: 3888,
                })
                .collect(),
        }
        .zoo_cfg();
        assert!(cfg.contains("server.1=zk-1:2888:3888\n"));
        assert!(cfg.contains("server.3=zk-3:2888:3888\n"));
        assert!(cfg.contains("4lw.commands.whitelist=srvr,mntr,ruok,conf\n"));
        assert!(cfg.contains("admin.enableServer=false\n"));
        assert!(cfg.contains("dataDir=/d\n"));
    }
}
