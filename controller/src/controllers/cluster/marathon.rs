//! Marathon members: stateless (their state is in ZooKeeper), so they need no volume. With
//! `spec.marathon.tls` they serve HTTPS only from the Secret's PKCS12 keystore; with
//! `spec.marathon.credentials` every request needs basic auth. Secrets reach Marathon through
//! its environment (`MESOSPHERE_KEYSTORE_PASS`, `MESOSPHERE_HTTP_CREDENTIALS`), never its
//! arguments, which show in process lists and in the Pod.

use k8s_openapi::api::core::v1::{
    Container, EnvVar, EnvVarSource, Pod, Probe, SecretKeySelector, SecretVolumeSource, Service,
    TCPSocketAction, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::member::{Member, MemberContainer, Role, config_hash, http_readiness, ports};
use super::zookeeper;
use crate::controllers::marathon_access::{PASSWORD_KEY, USERNAME_KEY};
use crate::crd::MesosCluster;

pub const HTTP_PORT: i32 = 8080;
pub const HTTPS_PORT: i32 = 8443;
/// The name of the container port a server serves HTTPS on; clients read it from the Pod.
pub const HTTPS_PORT_NAME: &str = "https";
/// Where the TLS Secret is mounted, and its keystore's key.
const TLS_DIR: &str = "/etc/marathon/tls";
pub const KEYSTORE_KEY: &str = "keystore.p12";

fn member(ordinal: u32) -> Member {
    Member::new(Role::Marathon, ordinal)
}

/// The flags of Marathon server `ordinal`: the masters and its own state through ZooKeeper,
/// HTTPS when asked for; the hostname last.
pub fn flags(mc: &MesosCluster, ordinal: u32, zk_ensemble: &[u32]) -> Vec<String> {
    let zk = zookeeper::connect_string(mc, zk_ensemble);
    let mut flags: Vec<String> = [
        "--master",
        &format!("zk://{zk}/mesos"),
        "--zk",
        &format!("zk://{zk}/marathon"),
        "--http_port",
        &HTTP_PORT.to_string(),
    ]
    .map(String::from)
    .to_vec();
    if mc.spec.marathon.tls.is_some() {
        flags.extend(
            [
                "--https_port",
                &HTTPS_PORT.to_string(),
                "--ssl_keystore_path",
                &format!("{TLS_DIR}/{KEYSTORE_KEY}"),
                "--disable_http",
            ]
            .map(String::from),
        );
    }
    flags.extend(["--hostname".into(), member(ordinal).fqdn(mc)]);
    flags
}

/// The port clients use: the HTTPS one when TLS is on.
fn port(mc: &MesosCluster) -> (&'static str, i32) {
    if mc.spec.marathon.tls.is_some() {
        (HTTPS_PORT_NAME, HTTPS_PORT)
    } else {
        ("http", HTTP_PORT)
    }
}

/// The role's headless Service.
pub fn service(mc: &MesosCluster) -> Service {
    super::member::headless_service(mc, Role::Marathon, &[port(mc)])
}

fn from_secret(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: key.into(),
                optional: None,
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// The keystore password and the basic credentials, from their Secrets. The credentials' parts
/// are not named `MARATHON_*`: Marathon would read those as flags.
fn env(mc: &MesosCluster) -> Vec<EnvVar> {
    let mut env = Vec::new();
    if let Some(tls) = &mc.spec.marathon.tls {
        let password = &tls.keystore_password;
        env.push(from_secret(
            "MESOSPHERE_KEYSTORE_PASS",
            &password.name,
            &password.key,
        ));
    }
    if let Some(c) = &mc.spec.marathon.credentials {
        env.push(from_secret(
            "HTTP_AUTH_USERNAME",
            &c.secret_name,
            USERNAME_KEY,
        ));
        env.push(from_secret(
            "HTTP_AUTH_PASSWORD",
            &c.secret_name,
            PASSWORD_KEY,
        ));
        env.push(EnvVar {
            name: "MESOSPHERE_HTTP_CREDENTIALS".into(),
            value: Some("$(HTTP_AUTH_USERNAME):$(HTTP_AUTH_PASSWORD)".into()),
            ..EnvVar::default()
        });
    }
    env
}

/// `GET /ping` (over HTTPS as the kubelet does it: unverified), or, when every path needs
/// credentials the kubelet does not have, an open port.
fn readiness(mc: &MesosCluster) -> Probe {
    let (_, port) = port(mc);
    if mc.spec.marathon.credentials.is_some() {
        return Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(port),
                ..TCPSocketAction::default()
            }),
            period_seconds: Some(2),
            ..Probe::default()
        };
    }
    let mut probe = http_readiness("/ping", port);
    if mc.spec.marathon.tls.is_some()
        && let Some(get) = probe.http_get.as_mut()
    {
        get.scheme = Some("HTTPS".into());
    }
    probe
}

/// The Pod of Marathon server `ordinal`; `secrets` digests the content of the Secrets it reads
/// ([`Secrets::digest`](crate::controllers::marathon_access::Secrets::digest)).
pub fn pod(
    mc: &MesosCluster,
    ordinal: u32,
    zk_ensemble: &[u32],
    secrets: &str,
    incarnation: &str,
) -> Pod {
    let image = mc.spec.marathon.image.clone();
    let args = flags(mc, ordinal, zk_ensemble);
    let env = env(mc);
    // Every flag but the hostname is the role's; so are the Secrets it reads, by name and by
    // content (hashed only when there are some, so that a cluster without them keeps its hash
    // across upgrades).
    let references = serde_json::to_string(&env).unwrap_or_default();
    let mut hashed: Vec<&str> = vec![&image];
    hashed.extend(args[..args.len() - 2].iter().map(String::as_str));
    if !env.is_empty() {
        hashed.extend([references.as_str(), secrets]);
    }
    let container = Container {
        name: "marathon".into(),
        image: Some(image.clone()),
        args: Some(args.clone()),
        env: Some(env.clone()),
        ports: Some(ports(&[port(mc)])),
        readiness_probe: Some(readiness(mc)),
        volume_mounts: mc.spec.marathon.tls.as_ref().map(|_| {
            vec![VolumeMount {
                name: "tls".into(),
                mount_path: TLS_DIR.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            }]
        }),
        ..Container::default()
    };
    let mut pod = member(ordinal).pod(
        mc,
        incarnation,
        MemberContainer {
            container,
            mounts: Vec::new(),
            config_hash: config_hash(&hashed),
        },
    );
    if let (Some(tls), Some(spec)) = (&mc.spec.marathon.tls, pod.spec.as_mut()) {
        spec.volumes.get_or_insert_default().push(Volume {
            name: "tls".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(tls.secret_name.clone()),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        });
    }
    pod
}

#[cfg(test)]
mod tests {
    use kube::ResourceExt;

    use super::*;
    use crate::controllers::cluster::test_cluster;

    #[test]
    fn marathon_finds_masters_and_state_through_zookeeper() {
        let mc = test_cluster(serde_json::json!({}));
        let flags = flags(&mc, 2, &[1]);
        let zk = "prod-zookeeper-1.prod-zookeeper.dcos.svc.cluster.local:2181";
        assert_eq!(
            flags,
            [
                "--master".to_string(),
                format!("zk://{zk}/mesos"),
                "--zk".into(),
                format!("zk://{zk}/marathon"),
                "--http_port".into(),
                "8080".into(),
                "--hostname".into(),
                "prod-marathon-2.prod-marathon.dcos.svc.cluster.local".into(),
            ]
        );
        let plain = pod(&mc, 2, &[1], "", "x");
        assert!(
            plain
                .spec
                .as_ref()
                .unwrap()
                .volumes
                .as_ref()
                .unwrap()
                .is_empty()
        );
        // A cluster without TLS or credentials keeps the hash it had before they existed, so
        // upgrading the operator restarts no server.
        assert_eq!(
            plain.annotations()[super::super::member::ANNOTATION_CONFIG_HASH],
            super::super::member::image_and_args_hash("marathon:1.11", &flags[..flags.len() - 2])
        );
    }

    /// An environment variable: name, literal value, `(Secret, key)`.
    type EnvLine = (String, Option<String>, Option<(String, String)>);

    fn secure() -> MesosCluster {
        test_cluster(serde_json::json!({"marathon": {
            "tls": {"secretName": "m-tls", "keystorePassword": {"name": "m-ks", "key": "pw"}},
            "credentials": {"secretName": "m-auth"}
        }}))
    }

    #[test]
    fn tls_and_credentials_reach_marathon_through_its_environment() {
        let mc = secure();
        let flags = flags(&mc, 0, &[1]);
        assert_eq!(
            flags[6..11],
            [
                "--https_port",
                "8443",
                "--ssl_keystore_path",
                "/etc/marathon/tls/keystore.p12",
                "--disable_http"
            ]
        );
        assert_eq!(flags[11], "--hostname", "the hostname stays last");
        let pod = pod(&mc, 0, &[1], "d1", "x");
        let spec = pod.spec.as_ref().unwrap();
        let c = &spec.containers[0];
        let env: Vec<EnvLine> = c
            .env
            .iter()
            .flatten()
            .map(|e| {
                let secret = e
                    .value_from
                    .as_ref()
                    .and_then(|v| v.secret_key_ref.as_ref())
                    .map(|r| (r.name.clone(), r.key.clone()));
                (e.name.clone(), e.value.clone(), secret)
            })
            .collect();
        let by_secret = |n: &str, s: &str, k: &str| (n.into(), None, Some((s.into(), k.into())));
        assert!(env.contains(&by_secret("MESOSPHERE_KEYSTORE_PASS", "m-ks", "pw")));
        assert!(env.contains(&by_secret("HTTP_AUTH_USERNAME", "m-auth", "username")));
        assert!(env.contains(&by_secret("HTTP_AUTH_PASSWORD", "m-auth", "password")));
        assert!(env.contains(&(
            "MESOSPHERE_HTTP_CREDENTIALS".into(),
            Some("$(HTTP_AUTH_USERNAME):$(HTTP_AUTH_PASSWORD)".into()),
            None
        )));
        assert!(
            env.iter().all(|(n, _, _)| !n.starts_with("MARATHON_")),
            "Marathon reads MARATHON_* as flags"
        );
        let mounts = c.volume_mounts.as_ref().unwrap();
        assert_eq!(mounts[0].mount_path, "/etc/marathon/tls");
        let volume = &spec.volumes.as_ref().unwrap()[0];
        assert_eq!(
            volume.secret.as_ref().unwrap().secret_name.as_deref(),
            Some("m-tls")
        );
        let ports = c.ports.as_ref().unwrap();
        assert_eq!(
            (ports[0].name.as_deref(), ports[0].container_port),
            (Some(HTTPS_PORT_NAME), 8443)
        );
        // Every path needs credentials the kubelet does not have: readiness is the open port.
        let probe = c.readiness_probe.as_ref().unwrap();
        assert_eq!(
            probe.tcp_socket.as_ref().unwrap().port,
            IntOrString::Int(8443)
        );

        let mut tls_only = secure();
        tls_only.spec.marathon.credentials = None;
        let probe = pod_probe(&tls_only);
        let get = probe.http_get.unwrap();
        assert_eq!(
            (get.scheme.as_deref(), get.port),
            (Some("HTTPS"), IntOrString::Int(8443))
        );

        // Pointing at another Secret is a configuration change: the servers roll.
        let mut other = secure();
        other.spec.marathon.credentials = Some(crate::crd::cluster::SecretName {
            secret_name: "m-auth-2".into(),
        });
        let hash = |mc: &MesosCluster| {
            let p = super::pod(mc, 0, &[1], "d1", "x");
            p.annotations()[super::super::member::ANNOTATION_CONFIG_HASH].clone()
        };
        assert_ne!(hash(&secure()), hash(&other));
        // So is new content in the same Secrets (a renewed keystore, a rotated password).
        let rotated = super::pod(&secure(), 0, &[1], "d2", "x");
        assert_ne!(
            hash(&secure()),
            rotated.annotations()[super::super::member::ANNOTATION_CONFIG_HASH]
        );
    }

    fn pod_probe(mc: &MesosCluster) -> Probe {
        let pod = pod(mc, 0, &[1], "d1", "x");
        pod.spec.unwrap().containers[0]
            .readiness_probe
            .clone()
            .unwrap()
    }
}
