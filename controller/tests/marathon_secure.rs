//! Marathon behind HTTPS and basic auth, through the operator binary on a real apiserver: a
//! MesosCluster with `spec.marathon.tls` and `.credentials` (a CA and a PKCS12 keystore made
//! with openssl, as Marathon's docs make them) waits `Degraded` for a missing Secret, then runs
//! its servers HTTPS-only with the Secrets in
//! their environment; the operator finds the leader and applies a MarathonApp over verified TLS
//! with the credentials; a password rotated while the cluster is paused is reported
//! `MarathonUnauthorized` without a retry storm, and once resumed the servers are restarted with
//! it; no password appears in the servers' arguments or the operator's log.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use mesos_operator::crd::{MarathonApp, MesosCluster};
use serde_json::{Value, json};

mod common;
use common::{cluster_env, create_cluster, eventually, start_operator, wait_phase};

const NS: &str = "secure";
const USER: &str = "operator";
/// `$` and `(` would be mangled by a shell or by `$(VAR)` expansion done twice.
const PASSWORD: &str = "Pa$$w(0)rd-9f3";
const ROTATED: &str = "rotated-Pa55-2";
const KEYSTORE_PASSWORD: &str = "keystore-pw-71";

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, and a server certificate for every Marathon server of cluster `prod` in [`NS`], in a
/// PKCS12 keystore with the CA in its chain. Returns `(ca.crt, keystore.p12)`.
fn certificates(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    std::fs::create_dir_all(dir).expect("pki dir");
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec![
        "req",
        "-x509",
        "-days",
        "2",
        "-subj",
        "/CN=test Marathon CA",
    ];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.crt"]);
    openssl(dir, &ca);
    let mut csr = vec!["req", "-subj", "/CN=prod-marathon"];
    csr.extend(ec);
    csr.extend(["-keyout", "server.key", "-out", "server.csr"]);
    openssl(dir, &csr);
    let san = format!("subjectAltName=DNS:*.prod-marathon.{NS}.svc.cluster.local\n");
    std::fs::write(dir.join("san.ext"), san).expect("san.ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.crt",
        ],
    );
    let pass = format!("pass:{KEYSTORE_PASSWORD}");
    openssl(
        dir,
        &[
            "pkcs12",
            "-export",
            "-name",
            "marathon",
            "-inkey",
            "server.key",
            "-in",
            "server.crt",
            "-certfile",
            "ca.crt",
            "-passout",
            &pass,
            "-out",
            "keystore.p12",
        ],
    );
    let read = |f: &str| std::fs::read(dir.join(f)).expect("read pki file");
    (read("ca.crt"), read("keystore.p12"))
}

async fn create_secret(client: &Client, name: &str, type_: &str, data: Value) {
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": name}, "type": type_, "stringData": data
    }))
    .expect("secret");
    Api::<Secret>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &secret)
        .await
        .expect("create secret");
}

async fn set_password(client: &Client, password: &str) {
    Api::<Secret>::namespaced(client.clone(), NS)
        .patch(
            "marathon-credentials",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"password": password}})),
        )
        .await
        .expect("patch credentials");
}

/// Running Marathon pods: `(name, IP, pod)`.
async fn marathon_pods(client: &Client) -> Vec<(String, String, Pod)> {
    let lp = ListParams::default().labels("mesos.operator.dev/role=marathon");
    Api::<Pod>::namespaced(client.clone(), NS)
        .list(&lp)
        .await
        .expect("list pods")
        .items
        .into_iter()
        .filter_map(|p| {
            let ip = p.status.as_ref()?.pod_ip.clone()?;
            Some((p.name_any(), ip, p))
        })
        .collect()
}

/// Marathon calls the operator made that were answered 401.
async fn refused(http: &reqwest::Client, metrics: &str) -> f64 {
    let text = http
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("metrics");
    text.lines()
        .filter(|l| l.starts_with("mesos_operator_marathon_requests_total{"))
        .filter(|l| l.contains(r#"code="401""#))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The MarathonApp's `Ready` condition as `(status, reason)`.
async fn ready(apps: &Api<MarathonApp>) -> (String, String) {
    let app = apps.get("hello").await.expect("get app");
    app.status
        .and_then(|s| s.conditions.into_iter().find(|c| c.type_ == "Ready"))
        .map(|c| (c.status, c.reason))
        .unwrap_or_default()
}

/// Makes the MarathonApp controller look again (a metadata change, no new generation).
async fn nudge(apps: &Api<MarathonApp>, n: u32) {
    let patch = json!({"metadata": {"annotations": {"test/nudge": n.to_string()}}});
    apps.patch("hello", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("annotate app");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn marathon_over_verified_tls_with_basic_auth() {
    let started = Instant::now();
    let (cp, _runner, client) = cluster_env(NS).await;
    let (ca, keystore) = certificates(&cp.dir().join("marathon-pki"));
    let keystore_secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "marathon-tls"},
        "data": {
            "keystore.p12": k8s_openapi::ByteString(keystore),
            "ca.crt": k8s_openapi::ByteString(ca.clone()),
        }
    }))
    .expect("tls secret");
    Api::<Secret>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &keystore_secret)
        .await
        .expect("create tls secret");
    create_secret(
        &client,
        "marathon-keystore",
        "Opaque",
        json!({"password": KEYSTORE_PASSWORD}),
    )
    .await;

    let log = "operator-secure.log";
    let operator = start_operator(&cp, log, &[], &[]);
    let clusters = create_cluster(
        &client,
        NS,
        json!({"zookeeper": {"replicas": 1}, "masters": {"replicas": 1},
               "marathon": {"replicas": 2,
                            "tls": {"secretName": "marathon-tls",
                                    "keystorePassword": {"name": "marathon-keystore", "key": "password"}},
                            "credentials": {"secretName": "marathon-credentials"}},
               "placement": {"antiAffinity": "None"}}),
    )
    .await;

    // Without its credentials Secret, or its password key, no Marathon server starts, and the
    // cluster says why.
    let secret_missing = |needle: &'static str| {
        let clusters = clusters.clone();
        async move {
            eventually(needle, Duration::from_secs(120), || async {
                let mc: MesosCluster = clusters.get("prod").await.map_err(|e| e.to_string())?;
                let degraded = mc
                    .status
                    .and_then(|s| s.conditions.into_iter().find(|c| c.type_ == "Degraded"));
                match degraded {
                    Some(c)
                        if c.reason == "MarathonSecretMissing" && c.message.contains(needle) =>
                    {
                        Ok(())
                    }
                    other => Err(format!("{other:?}")),
                }
            })
            .await
        }
    };
    secret_missing("Secret marathon-credentials does not exist").await;
    assert!(marathon_pods(&client).await.is_empty());
    create_secret(
        &client,
        "marathon-credentials",
        "kubernetes.io/basic-auth",
        json!({"username": USER}),
    )
    .await;
    secret_missing(r#"Secret marathon-credentials has no key "password""#).await;
    assert!(marathon_pods(&client).await.is_empty());
    set_password(&client, PASSWORD).await;
    wait_phase(&client, NS, "Available", "1/1", Duration::from_secs(240)).await;
    eprintln!("cluster Available after {:.1?}", started.elapsed());

    // The operator found the leader over HTTPS with the credentials.
    let leader = eventually(
        "status.marathon.leader",
        Duration::from_secs(60),
        || async {
            let mc: MesosCluster = clusters.get("prod").await.map_err(|e| e.to_string())?;
            mc.status
                .and_then(|s| s.marathon)
                .and_then(|m| m.leader)
                .ok_or_else(|| "no leader yet".to_string())
        },
    )
    .await;
    let pods = marathon_pods(&client).await;
    assert_eq!(pods.len(), 2);
    assert!(pods.iter().any(|(name, _, _)| *name == leader), "{leader}");

    // The servers: HTTPS only, secrets only in the environment, by reference.
    for (name, _, pod) in &pods {
        let c = &pod.spec.as_ref().unwrap().containers[0];
        let args = c.args.clone().unwrap_or_default().join(" ");
        assert!(args.contains("--disable_http"), "{name}: {args}");
        assert!(
            args.contains("--ssl_keystore_path /etc/marathon/tls/keystore.p12"),
            "{args}"
        );
        let spec = serde_json::to_string(pod.spec.as_ref().unwrap()).unwrap();
        assert!(
            !spec.contains(PASSWORD) && !spec.contains(KEYSTORE_PASSWORD),
            "{spec}"
        );
    }

    // What the servers themselves enforce, asked from outside the operator.
    let fqdn = |name: &str| format!("{name}.prod-marathon.{NS}.svc.cluster.local");
    let names: Vec<(String, std::net::SocketAddr)> = pods
        .iter()
        .map(|(name, ip, _)| (fqdn(name), format!("{ip}:8443").parse().unwrap()))
        .collect();
    let https = mesos_operator::tls::client_trusting("test CA", &ca, &names).expect("client");
    let plain = mesos_operator::tls::plain_client();
    for (name, ip, _) in &pods {
        let url = format!("https://{}:8443", fqdn(name));
        let anonymous = https.get(format!("{url}/ping")).send().await.expect("ping");
        assert_eq!(anonymous.status().as_u16(), 401, "{name}");
        let challenge = anonymous.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(challenge, r#"basic realm="Mesosphere""#);
        let wrong = https
            .get(format!("{url}/ping"))
            .basic_auth(USER, Some("nope"))
            .send()
            .await
            .expect("ping");
        assert_eq!(wrong.status().as_u16(), 401);
        let ok = https
            .get(format!("{url}/v2/leader"))
            .basic_auth(USER, Some(PASSWORD))
            .send()
            .await
            .expect("leader");
        assert_eq!(ok.status().as_u16(), 200, "{name}");
        let body: Value = ok.json().await.unwrap();
        assert_eq!(body["leader"], format!("{}:8443", fqdn(&leader)));
        // No plain HTTP, and a client that does not trust the CA is refused.
        assert!(
            plain
                .get(format!("http://{ip}:8080/ping"))
                .send()
                .await
                .is_err()
        );
        assert!(plain.get(format!("{url}/ping")).send().await.is_err());
    }

    // A MarathonApp goes through TLS and auth (the standby proxies to the leader).
    let apps: Api<MarathonApp> = Api::namespaced(client.clone(), NS);
    let app: MarathonApp = serde_json::from_value(json!({
        "apiVersion": "mesos.operator.dev/v1alpha1", "kind": "MarathonApp",
        "metadata": {"name": "hello"},
        "spec": {"clusterRef": {"name": "prod"},
                 "app": {"cmd": "sleep 1000", "cpus": 0.1, "mem": 32, "instances": 0}}
    }))
    .expect("app");
    apps.create(&PostParams::default(), &app)
        .await
        .expect("create app");
    eventually("app Ready", Duration::from_secs(90), || async {
        match ready(&apps).await {
            (s, _) if s == "True" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let leader_url = format!("https://{}:8443", fqdn(&leader));
    let stored: Value = https
        .get(format!("{leader_url}/v2/apps/{NS}/hello"))
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
        .expect("get app")
        .json()
        .await
        .expect("app json");
    assert_eq!(stored["app"]["cmd"], "sleep 1000");

    // A password rotated in place while the cluster is paused: the operator uses the new one,
    // the servers still run with the old one. Reported, and not retried in a hot loop.
    let pause = |paused: bool| {
        let clusters = clusters.clone();
        async move {
            let patch = json!({"spec": {"paused": paused}});
            clusters
                .patch("prod", &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .expect("pause");
        }
    };
    pause(true).await;
    let before: Vec<String> = marathon_pods(&client)
        .await
        .iter()
        .map(|(_, _, p)| p.uid().unwrap())
        .collect();
    set_password(&client, ROTATED).await;
    nudge(&apps, 1).await;
    eventually("MarathonUnauthorized", Duration::from_secs(60), || async {
        match ready(&apps).await {
            (_, r) if r == "MarathonUnauthorized" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let http = mesos_operator::tls::plain_client();
    let unauthorized = refused(&http, &operator.metrics).await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let later = refused(&http, &operator.metrics).await;
    assert!(unauthorized >= 1.0, "the 401 was counted");
    assert!(
        later - unauthorized <= 4.0,
        "8 s of refused credentials cost {} more calls",
        later - unauthorized
    );

    // Resumed, the servers pick the rotation up: restarted one at a time with the new password.
    let rolled = Instant::now();
    pause(false).await;
    eventually(
        "app Ready with the rotated password",
        Duration::from_secs(180),
        || async {
            match ready(&apps).await {
                (s, _) if s == "True" => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    let after = marathon_pods(&client).await;
    assert!(
        after
            .iter()
            .all(|(_, _, p)| !before.contains(&p.uid().unwrap())),
        "every server was restarted"
    );
    eprintln!("rotation rolled out in {:.1?}", rolled.elapsed());

    let text = std::fs::read_to_string(cp.dir().join(log)).expect("operator log");
    assert!(
        !text.contains(PASSWORD),
        "the password is in the operator's log"
    );
    eprintln!("total {:.1?}", started.elapsed());
}
