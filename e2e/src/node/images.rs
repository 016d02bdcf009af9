//! The image → program table: which local program stands in for a container image, with the
//! image's ENTRYPOINT/CMD semantics and the directories the image would bring along.

use std::path::{Path, PathBuf};

/// What an image runs when a container does not override it, like an image config.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// Prepended to PATH (the image's own bin dirs).
    pub path: Option<PathBuf>,
    /// Directories that exist in the image; each container gets private empty ones there.
    pub dirs: Vec<&'static str>,
    /// Environment the image sets (container env overrides it).
    pub env: Vec<(String, String)>,
}

impl Image {
    /// The argv of a container: Kubernetes' rules for command/args over ENTRYPOINT/CMD.
    pub fn argv(&self, command: &[String], args: &[String]) -> Vec<String> {
        match (command.is_empty(), args.is_empty()) {
            (false, _) => command.iter().chain(args).cloned().collect(),
            (true, false) => self.entrypoint.iter().chain(args).cloned().collect(),
            (true, true) => self.entrypoint.iter().chain(&self.cmd).cloned().collect(),
        }
    }
}

/// Why an image has no program here.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "image {image:?} is not in the node runner's image table (known: zookeeper:*, mesos-master:*, mesos-agent:*, marathon:*, busybox:*, test:*){detail}"
)]
pub struct UnknownImage {
    pub image: String,
    pub detail: String,
}

/// Resolves images; `sims_dir` holds the simulator binaries, `zk_bin` the ZooKeeper scripts.
#[derive(Debug, Clone)]
pub struct ImageTable {
    pub sims_dir: PathBuf,
    pub zk_bin: PathBuf,
}

impl ImageTable {
    /// Writes the ZooKeeper image scripts under `dir`.
    pub fn new(sims_dir: PathBuf, dir: &Path) -> std::io::Result<Self> {
        let zk_bin = dir.join("zookeeper-image/bin");
        std::fs::create_dir_all(&zk_bin)?;
        write_script(&zk_bin.join("docker-entrypoint.sh"), ZK_ENTRYPOINT)?;
        write_script(&zk_bin.join("zkServer.sh"), ZK_SERVER)?;
        Ok(Self { sims_dir, zk_bin })
    }

    pub fn resolve(&self, image: &str) -> Result<Image, UnknownImage> {
        let repo = image_repository(image);
        let sim = |name: &str| {
            let path = self.sims_dir.join(name);
            if path.is_file() {
                Ok(Image {
                    entrypoint: vec![path.display().to_string()],
                    cmd: Vec::new(),
                    path: None,
                    dirs: Vec::new(),
                    env: Vec::new(),
                })
            } else {
                Err(UnknownImage {
                    image: image.to_string(),
                    detail: format!(
                        "; its simulator {} is not built (cargo build -p mesos-sims, or set MESOS_SIMS_DIR)",
                        path.display()
                    ),
                })
            }
        };
        match repo {
            "zookeeper" => Ok(Image {
                entrypoint: vec![
                    self.zk_bin
                        .join("docker-entrypoint.sh")
                        .display()
                        .to_string(),
                ],
                cmd: vec!["zkServer.sh".into(), "start-foreground".into()],
                path: Some(self.zk_bin.clone()),
                dirs: vec!["/conf", "/data", "/datalog", "/logs"],
                env: [
                    ("ZOO_CONF_DIR", "/conf"),
                    ("ZOO_DATA_DIR", "/data"),
                    ("ZOO_DATA_LOG_DIR", "/datalog"),
                    ("ZOO_LOG_DIR", "/logs"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            }),
            "mesos-master" => sim("mesos-master-sim"),
            "mesos-agent" => sim("mesos-agent-sim"),
            "marathon" => sim("marathon-sim"),
            "busybox" | "test" => Ok(Image {
                entrypoint: Vec::new(),
                cmd: vec!["sh".into()],
                path: None,
                dirs: Vec::new(),
                env: Vec::new(),
            }),
            _ => Err(UnknownImage {
                image: image.to_string(),
                detail: String::new(),
            }),
        }
    }
}

/// `registry/org/zookeeper:3.8@sha256:..` → `zookeeper`.
fn image_repository(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    let last = no_digest.rsplit('/').next().unwrap_or(no_digest);
    last.split(':').next().unwrap_or(last)
}

fn write_script(path: &Path, body: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, body)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}

/// The official image's docker-entrypoint.sh conventions: generate `$ZOO_CONF_DIR/zoo.cfg` from
/// ZOO_* variables unless one is mounted, write `myid` from ZOO_MY_ID unless present.
const ZK_ENTRYPOINT: &str = r#"#!/bin/sh
set -e
mkdir -p "$ZOO_DATA_DIR" "$ZOO_DATA_LOG_DIR" "$ZOO_LOG_DIR" "$ZOO_CONF_DIR"
CONFIG="$ZOO_CONF_DIR/zoo.cfg"
if [ ! -f "$CONFIG" ]; then
  {
    echo "dataDir=$ZOO_DATA_DIR"
    echo "dataLogDir=$ZOO_DATA_LOG_DIR"
    echo "tickTime=${ZOO_TICK_TIME:-2000}"
    echo "initLimit=${ZOO_INIT_LIMIT:-5}"
    echo "syncLimit=${ZOO_SYNC_LIMIT:-2}"
    echo "autopurge.snapRetainCount=${ZOO_AUTOPURGE_SNAPRETAINCOUNT:-3}"
    echo "autopurge.purgeInterval=${ZOO_AUTOPURGE_PURGEINTERVAL:-0}"
    echo "maxClientCnxns=${ZOO_MAX_CLIENT_CNXNS:-60}"
    echo "standaloneEnabled=${ZOO_STANDALONE_ENABLED:-true}"
    echo "admin.enableServer=${ZOO_ADMINSERVER_ENABLED:-true}"
    if [ -z "$ZOO_SERVERS" ]; then
      echo "clientPort=2181"
    else
      for server in $ZOO_SERVERS; do echo "$server"; done
    fi
    if [ -n "$ZOO_4LW_COMMANDS_WHITELIST" ]; then
      echo "4lw.commands.whitelist=$ZOO_4LW_COMMANDS_WHITELIST"
    fi
  } > "$CONFIG"
fi
if [ ! -f "$ZOO_DATA_DIR/myid" ]; then
  echo "${ZOO_MY_ID:-1}" > "$ZOO_DATA_DIR/myid"
fi
exec "$@"
"#;

/// `zkServer.sh start-foreground` of the official image, backed by Debian's ZooKeeper jar.
const ZK_SERVER: &str = r#"#!/bin/sh
if [ "$1" != "start-foreground" ]; then
  echo "zkServer.sh: only start-foreground is supported here (got: $*)" >&2
  exit 2
fi
CONFIG="${ZOOCFGDIR:-$ZOO_CONF_DIR}/zoo.cfg"
exec java -Xmx256m -XX:+UseSerialGC -Dzookeeper.log.dir="${ZOO_LOG_DIR:-/logs}" \
  -Dorg.slf4j.simpleLogger.showDateTime=true \
  -cp /usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar \
  $SERVER_JVMFLAGS $JVMFLAGS org.apache.zookeeper.server.quorum.QuorumPeerMain "$CONFIG"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> ImageTable {
        ImageTable {
            sims_dir: PathBuf::from("/nonexistent"),
            zk_bin: PathBuf::from("/zk/bin"),
        }
    }

    #[test]
    fn repository_ignores_registry_tag_and_digest() {
        assert_eq!(
            image_repository("docker.io/library/zookeeper:3.8"),
            "zookeeper"
        );
        assert_eq!(image_repository("busybox@sha256:abc"), "busybox");
        assert_eq!(image_repository("localhost:5000/test:1"), "test");
    }

    #[test]
    fn argv_follows_kubernetes_command_args_rules() {
        let zk = table().resolve("zookeeper:3.8").unwrap();
        assert_eq!(
            zk.argv(&[], &[]),
            [
                "/zk/bin/docker-entrypoint.sh",
                "zkServer.sh",
                "start-foreground"
            ]
        );
        assert_eq!(
            zk.argv(&[], &["x".into()]),
            ["/zk/bin/docker-entrypoint.sh", "x"]
        );
        assert_eq!(zk.argv(&["a".into()], &["b".into()]), ["a", "b"]);
        let bb = table().resolve("busybox:1.36").unwrap();
        assert_eq!(bb.argv(&[], &[]), ["sh"]);
    }

    #[test]
    fn unknown_images_and_missing_simulators_are_explained() {
        let err = table().resolve("nginx:1").unwrap_err();
        assert!(
            err.to_string()
                .contains("not in the node runner's image table")
        );
        let err = table().resolve("mesos-master:1.11").unwrap_err();
        assert!(
            err.to_string().contains("mesos-master-sim is not built"),
            "{err}"
        );
    }
}
