//! How the operator reaches one MesosCluster's Marathon: over HTTP at each server's Pod IP, or,
//! with `spec.marathon.tls`, over HTTPS verified by the name the server's certificate carries
//! (`<pod>.<service>.<namespace>.svc.cluster.local`, resolved to the Pod IP by the client, so no
//! cluster DNS is needed); with the cluster's basic credentials when it has some.
//!
//! Each server is asked the way its Pod serves (its `https` port or not), so a roll that turns
//! TLS on or off keeps every server reachable.

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};
use sha2::{Digest, Sha256};

use super::cluster::marathon::{HTTP_PORT, HTTPS_PORT_NAME, KEYSTORE_KEY};
use super::cluster::member::{LABEL_CLUSTER, LABEL_ROLE, pod_ready};
use crate::crd::MesosCluster;
use crate::crd::cluster::{MarathonTls, SecretName};
use crate::marathon::http::{Credentials, HttpMarathon, Limits, Server};
use crate::marathon::metrics::CallMetrics;
use crate::tls::TlsError;

/// The key of the CA in the TLS Secret.
pub const CA_KEY: &str = "ca.crt";
/// The keys of a `kubernetes.io/basic-auth` Secret.
pub const USERNAME_KEY: &str = "username";
pub const PASSWORD_KEY: &str = "password";

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("Secret {name} does not exist")]
    SecretNotFound { name: String },
    #[error("Secret {name} has no key {key:?}")]
    KeyMissing { name: String, key: String },
    /// Clients encode basic credentials as UTF-8, Jetty decodes them as ISO-8859-1: only
    /// ASCII means the same to both.
    #[error("key {key:?} of Secret {name} is not ASCII text, which Marathon's credentials need")]
    NotAscii { name: String, key: String },
    /// Basic auth splits `user:password` at the first colon and Marathon's
    /// `--http_credentials` at the last, so neither part can hold one.
    #[error("key {key:?} of Secret {name} contains ':', which Marathon's credentials cannot hold")]
    Colon { name: String, key: String },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("reading Secret {name}: {source}")]
    Kube { name: String, source: kube::Error },
    #[error("listing the Marathon pods of {cluster}: {source}")]
    Pods {
        cluster: String,
        source: kube::Error,
    },
}

impl AccessError {
    /// The stable category (metrics, logs) and the condition reason a status shows.
    fn class(&self) -> (&'static str, &'static str) {
        match self {
            AccessError::SecretNotFound { .. } | AccessError::KeyMissing { .. } => {
                ("marathon-secret-missing", "MarathonSecretMissing")
            }
            AccessError::NotAscii { .. } | AccessError::Colon { .. } | AccessError::Tls(_) => {
                ("marathon-secret-invalid", "MarathonSecretInvalid")
            }
            AccessError::Kube { .. } | AccessError::Pods { .. } => ("kube", "MarathonUnavailable"),
        }
    }

    pub fn category(&self) -> &'static str {
        self.class().0
    }

    pub fn reason(&self) -> &'static str {
        self.class().1
    }
}

/// What the cluster's spec and Secrets say about reaching its Marathon.
pub struct Access {
    /// `namespace/cluster`.
    key: String,
    /// The PEM CA of `spec.marathon.tls`.
    ca: Option<Vec<u8>>,
    credentials: Option<Credentials>,
}

impl Access {
    /// Reads the Secrets `mc` refers to.
    pub async fn read(client: &Client, mc: &MesosCluster) -> Result<Self, AccessError> {
        Secrets::fetch(client, mc).await?.access()
    }

    /// A client for the running servers among `pods` (ready ones first), or `None` when none
    /// runs.
    pub fn connect(
        &self,
        pods: &[Pod],
        clients: &TlsClients,
        limits: Limits,
        metrics: CallMetrics,
    ) -> Result<Option<HttpMarathon>, AccessError> {
        let servers = servers(pods);
        if servers.is_empty() {
            return Ok(None);
        }
        let http = match &self.ca {
            Some(ca) => {
                let names: Vec<(String, SocketAddr)> = servers
                    .iter()
                    .filter_map(|(_, resolve)| resolve.clone())
                    .collect();
                clients.get(&self.key, ca, &names)?
            }
            None => clients.plain.clone(),
        };
        let servers = servers.into_iter().map(|(s, _)| s).collect();
        Ok(Some(
            HttpMarathon::new(http, servers, limits, metrics)
                .with_credentials(self.credentials.clone()),
        ))
    }
}

/// One part of the basic credentials, if Marathon can match it.
fn credential_part(name: &str, key: &str, bytes: &[u8]) -> Result<String, AccessError> {
    let (name, key) = (name.to_string(), key.to_string());
    match String::from_utf8(bytes.to_vec()) {
        Ok(t) if !t.is_ascii() => Err(AccessError::NotAscii { name, key }),
        Ok(t) if t.contains(':') => Err(AccessError::Colon { name, key }),
        Ok(t) => Ok(t),
        Err(_) => Err(AccessError::NotAscii { name, key }),
    }
}

/// The Secrets a cluster's Marathon servers and the operator read, each fetched once: what the
/// operator needs to reach the servers ([`Secrets::access`]) and what the servers' config hash
/// covers ([`Secrets::digest`]) come from one read.
pub struct Secrets {
    /// `namespace/cluster`.
    key: String,
    tls: Option<MarathonTls>,
    credentials: Option<SecretName>,
    /// Each referenced Secret's data; `None` when it does not exist.
    data: BTreeMap<String, Option<BTreeMap<String, Vec<u8>>>>,
}

impl Secrets {
    pub async fn fetch(client: &Client, mc: &MesosCluster) -> Result<Self, AccessError> {
        let namespace = mc.namespace().unwrap_or_default();
        let (tls, credentials) = (
            mc.spec.marathon.tls.clone(),
            mc.spec.marathon.credentials.clone(),
        );
        let names = tls
            .iter()
            .flat_map(|t| [t.secret_name.clone(), t.keystore_password.name.clone()])
            .chain(credentials.iter().map(|c| c.secret_name.clone()));
        let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
        let mut data = BTreeMap::new();
        for name in names {
            if data.contains_key(&name) {
                continue;
            }
            let secret = api
                .get_opt(&name)
                .await
                .map_err(|source| AccessError::Kube {
                    name: name.clone(),
                    source,
                })?;
            let values = secret.map(|s| {
                s.data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0))
                    .collect()
            });
            data.insert(name, values);
        }
        Ok(Self {
            key: format!("{namespace}/{}", mc.name_any()),
            tls,
            credentials,
            data,
        })
    }

    fn value(&self, name: &str, key: &str) -> Result<&[u8], AccessError> {
        self.data
            .get(name)
            .and_then(Option::as_ref)
            .ok_or_else(|| AccessError::SecretNotFound { name: name.into() })?
            .get(key)
            .map(Vec::as_slice)
            .ok_or_else(|| AccessError::KeyMissing {
                name: name.into(),
                key: key.into(),
            })
    }

    /// How the operator reaches the servers: the CA, then the credentials.
    pub fn access(&self) -> Result<Access, AccessError> {
        let ca = match &self.tls {
            Some(tls) => Some(self.value(&tls.secret_name, CA_KEY)?.to_vec()),
            None => None,
        };
        let credentials = match &self.credentials {
            Some(c) => {
                let part =
                    |key| credential_part(&c.secret_name, key, self.value(&c.secret_name, key)?);
                Some(Credentials::new(part(USERNAME_KEY)?, part(PASSWORD_KEY)?))
            }
            None => None,
        };
        Ok(Access {
            key: self.key.clone(),
            ca,
            credentials,
        })
    }

    /// A digest of every Secret the servers read (empty without any), part of their config
    /// hash: rotating one in place (cert-manager renews keystores before they expire) restarts
    /// them one at a time like any other configuration change. A Secret or key they need that
    /// is missing is an error: a server started without it could not run.
    pub fn digest(&self) -> Result<String, AccessError> {
        let mut needed: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        if let Some(tls) = &self.tls {
            needed
                .entry(&tls.secret_name)
                .or_default()
                .extend([KEYSTORE_KEY, CA_KEY]);
            let password = &tls.keystore_password;
            needed
                .entry(&password.name)
                .or_default()
                .push(&password.key);
        }
        if let Some(c) = &self.credentials {
            needed
                .entry(&c.secret_name)
                .or_default()
                .extend([USERNAME_KEY, PASSWORD_KEY]);
        }
        if needed.is_empty() {
            return Ok(String::new());
        }
        let mut digest = Sha256::new();
        for (name, keys) in needed {
            for key in keys {
                self.value(name, key)?;
            }
            digest.update(name.as_bytes());
            for (key, value) in self.data.get(name).into_iter().flatten().flatten() {
                digest.update([0]);
                digest.update(key.as_bytes());
                digest.update([0]);
                digest.update(value);
            }
            digest.update([0xff]);
        }
        Ok(digest
            .finalize()
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect())
    }
}

/// The cluster's running Marathon Pods.
pub async fn pods(client: &Client, mc: &MesosCluster) -> Result<Vec<Pod>, AccessError> {
    let cluster = mc.name_any();
    let selector = format!("{LABEL_CLUSTER}={cluster},{LABEL_ROLE}=marathon");
    Api::<Pod>::namespaced(client.clone(), &mc.namespace().unwrap_or_default())
        .list(&ListParams::default().labels(&selector))
        .await
        .map(|l| l.items)
        .map_err(|source| AccessError::Pods { cluster, source })
}

/// Each running Marathon server among `pods`, ready ones first, with the name to resolve to its
/// address when it serves HTTPS.
fn servers(pods: &[Pod]) -> Vec<(Server, Option<(String, SocketAddr)>)> {
    let mut running: Vec<&Pod> = pods
        .iter()
        .filter(|p| p.labels().get(LABEL_ROLE).map(String::as_str) == Some("marathon"))
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .collect();
    running.sort_by_key(|p| !pod_ready(p));
    running.into_iter().filter_map(server).collect()
}

fn server(pod: &Pod) -> Option<(Server, Option<(String, SocketAddr)>)> {
    let ip: IpAddr = pod.status.as_ref()?.pod_ip.as_ref()?.parse().ok()?;
    let spec = pod.spec.as_ref()?;
    let https = spec
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.name.as_deref() == Some(HTTPS_PORT_NAME))
        .and_then(|p| u16::try_from(p.container_port).ok());
    let name = pod.name_any();
    Some(match https {
        Some(port) => {
            let host = format!(
                "{}.{}.{}.svc.cluster.local",
                spec.hostname.as_deref().unwrap_or(&name),
                spec.subdomain.as_deref()?,
                pod.namespace()?
            );
            let url = format!("https://{host}:{port}");
            (
                Server { name, url },
                Some((host, SocketAddr::new(ip, port))),
            )
        }
        None => {
            let url = format!("http://{}", SocketAddr::new(ip, HTTP_PORT as u16));
            (Server { name, url }, None)
        }
    })
}

/// HTTPS clients per cluster, kept while the CA and the servers' addresses stay the same, so
/// that connections (and their handshakes) are reused across passes.
pub struct TlsClients {
    plain: reqwest::Client,
    by_cluster: Mutex<HashMap<String, (u64, reqwest::Client)>>,
}

impl TlsClients {
    pub fn new(plain: reqwest::Client) -> Self {
        Self {
            plain,
            by_cluster: Mutex::default(),
        }
    }

    fn get(
        &self,
        key: &str,
        ca: &[u8],
        names: &[(String, SocketAddr)],
    ) -> Result<reqwest::Client, TlsError> {
        let mut h = DefaultHasher::new();
        (ca, names).hash(&mut h);
        let fingerprint = h.finish();
        let mut cache = self.by_cluster.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((f, client)) = cache.get(key)
            && *f == fingerprint
        {
            return Ok(client.clone());
        }
        let client = crate::tls::client_trusting(&format!("{key} {CA_KEY}"), ca, names)?;
        cache.insert(key.to_string(), (fingerprint, client.clone()));
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(name: &str, ready: bool, https: bool) -> Pod {
        let port = if https {
            json!({"name": "https", "containerPort": 8443})
        } else {
            json!({"name": "http", "containerPort": 8080})
        };
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns", "labels": {LABEL_ROLE: "marathon"}},
            "spec": {"hostname": name, "subdomain": "prod-marathon",
                     "containers": [{"name": "marathon", "ports": [port]}]},
            "status": {"phase": "Running", "podIP": "10.0.0.9",
                       "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
        }))
        .unwrap()
    }

    #[test]
    fn credential_parts_marathon_can_match() {
        let part = |v: &[u8]| credential_part("auth", "password", v);
        assert_eq!(part(b"Pa$$w(0)rd").unwrap(), "Pa$$w(0)rd");
        for (bytes, reason) in [
            (&b"a:b"[..], "Colon"),
            ("pässword".as_bytes(), "NotAscii"),
            (&[0xff, 0xfe][..], "NotAscii"),
        ] {
            let e = part(bytes).unwrap_err();
            assert!(format!("{e:?}").starts_with(reason), "{bytes:?}: {e:?}");
            assert_eq!(e.reason(), "MarathonSecretInvalid");
        }
    }

    #[test]
    fn each_server_is_asked_the_way_its_pod_serves() {
        let found = servers(&[pod("m-0", false, false), pod("m-1", true, true)]);
        let (first, resolve) = &found[0];
        assert_eq!(first.name, "m-1", "ready servers first");
        assert_eq!(
            first.url,
            "https://m-1.prod-marathon.ns.svc.cluster.local:8443"
        );
        assert_eq!(
            resolve.clone(),
            Some((
                "m-1.prod-marathon.ns.svc.cluster.local".to_string(),
                "10.0.0.9:8443".parse().unwrap()
            ))
        );
        assert_eq!(
            (found[1].0.url.as_str(), &found[1].1),
            ("http://10.0.0.9:8080", &None)
        );
    }
}
