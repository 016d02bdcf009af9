//! marathon-sim over HTTPS (a PKCS12 keystore made with the openssl CLI, as Marathon's
//! `docs/docs/ssl-basic-access-authentication.md` does) and with HTTP basic auth; HA
//! pairs on real ZooKeeper, no Mesos master (the API answers without one).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_rustls::HttpsConnectorBuilder;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mesos_sims::zk_ensemble::ZkEnsemble;
use rustls::pki_types::CertificateDer;
use serde_json::json;

const PASS: &str = "keystore-pass";
const CREDENTIALS: &str = "ops:s3cret";

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test CA in `dir` that issues server certificates packed into PKCS12 keystores.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        let dir = dir.join("pki");
        std::fs::create_dir_all(&dir).unwrap();
        openssl(
            &dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                "/CN=sims test CA",
            ],
        );
        openssl(
            &dir,
            &["x509", "-in", "ca.crt", "-outform", "DER", "-out", "ca.der"],
        );
        Pki { dir }
    }

    fn ca(&self) -> CertificateDer<'static> {
        std::fs::read(self.dir.join("ca.der")).unwrap().into()
    }

    /// `<name>.p12`: an RSA key and a certificate for `san`, chained to the CA (the CA
    /// bundled with `-certfile`, as a plain chain certificate).
    fn keystore(&self, name: &str, san: &str) -> PathBuf {
        let ext = format!("{name}.ext");
        std::fs::write(
            self.dir.join(&ext),
            format!(
                "subjectAltName={san}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"
            ),
        )
        .unwrap();
        let (key, csr, crt, p12) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
            format!("{name}.p12"),
        );
        openssl(
            &self.dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                &format!("/CN={name}"),
            ],
        );
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-set_serial",
                &format!("{}", rand_serial()),
                "-days",
                "2",
                "-extfile",
                &ext,
                "-out",
                &crt,
            ],
        );
        openssl(
            &self.dir,
            &[
                "pkcs12",
                "-export",
                "-inkey",
                &key,
                "-in",
                &crt,
                "-certfile",
                "ca.crt",
                "-name",
                "marathon",
                "-out",
                &p12,
                "-passout",
                &format!("pass:{PASS}"),
            ],
        );
        self.dir.join(p12)
    }
}

fn rand_serial() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    (nanos % 1_000_000_007) as u64 + 1
}

/// An HTTPS client trusting only `ca` (and checking host names).
struct Https {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Https {
    fn trusting(ca: CertificateDer<'static>) -> Https {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_only()
            .enable_http1()
            .build();
        Https {
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        basic: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> Result<Answer, String> {
        let mut req = Request::builder().method(method).uri(url);
        if let Some(user_password) = basic {
            use base64::Engine;
            let token = base64::engine::general_purpose::STANDARD.encode(user_password);
            req = req.header("Authorization", format!("Basic {token}"));
        }
        if body.is_some() {
            req = req.header("Content-Type", "application/json");
        }
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let fut = self.client.request(req.body(Full::new(body)).unwrap());
        let resp = tokio::time::timeout(Duration::from_secs(15), fut)
            .await
            .map_err(|_| format!("{url} timed out"))?
            .map_err(|e| format!("{url}: {e:?}"))?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }

    async fn get(&self, url: &str, basic: Option<&str>) -> Result<Answer, String> {
        self.send(Method::GET, url, basic, None).await
    }
}

fn header<'a>(a: &'a Answer, name: &str) -> Option<&'a str> {
    a.headers.get(name).and_then(|v| v.to_str().ok())
}

/// One test's ZooKeeper, CA, HTTPS client and scratch directory; holds [`SERIAL`].
struct Bed {
    dir: TestDir,
    pki: Pki,
    zk: ZkEnsemble,
    client: Https,
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

impl Bed {
    async fn start() -> Bed {
        let serial = SERIAL.lock().await;
        let dir = TestDir::new();
        let pki = Pki::new(dir.path());
        let zk = ZkEnsemble::start(1, dir.path(), 500).unwrap();
        let client = Https::trusting(pki.ca());
        Bed {
            dir,
            pki,
            zk,
            client,
            _serial: serial,
        }
    }

    /// A marathon-sim on 127.0.0.1 with `args` and `env`; no Mesos master behind it.
    fn marathon(&self, name: &str, args: &[String], env: &[(&str, &str)]) -> Proc {
        let zk = format!("zk://{}/marathon", self.zk.connect_string());
        let mut all = sim_args(&zk);
        all.extend(
            [
                "--hostname=127.0.0.1",
                "--http_address=127.0.0.1",
                "--https_address=127.0.0.1",
                "--zk_session_timeout=2000",
            ]
            .map(String::from),
        );
        all.extend_from_slice(args);
        let log = self.dir.path().join(format!("{name}.log"));
        Proc::spawn_with_env(env!("CARGO_BIN_EXE_marathon-sim"), &all, env, &log)
    }
}

/// `--master` (a port nothing listens on) and `--zk`.
fn sim_args(zk: &str) -> Vec<String> {
    vec![
        format!("--master=http://127.0.0.1:{}", free_port()),
        format!("--zk={zk}"),
    ]
}

fn ports(http: u16, https: u16) -> Vec<String> {
    vec![
        format!("--http_port={http}"),
        format!("--https_port={https}"),
    ]
}

/// The leader the sims at `urls` agree on (`/v2/leader`).
async fn agreed_leader(client: &Https, urls: &[String], basic: Option<&str>) -> String {
    eventually(
        Duration::from_secs(30),
        "an agreed Marathon leader",
        || async {
            let mut leaders = Vec::new();
            for url in urls {
                let a = client.get(&format!("{url}/v2/leader"), basic).await.ok()?;
                let v: serde_json::Value = serde_json::from_str(&a.body).ok()?;
                leaders.push(v["leader"].as_str()?.to_string());
            }
            leaders
                .windows(2)
                .all(|w| w[0] == w[1])
                .then(|| leaders[0].clone())
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_only_with_basic_auth_and_a_standby_proxying_to_the_leader() {
    let bed = Bed::start().await;
    let client = &bed.client;
    let keystore = bed.pki.keystore("marathon", "IP:127.0.0.1");
    let (http, https) = ([free_port(), free_port()], [free_port(), free_port()]);
    let env = [
        ("MESOSPHERE_KEYSTORE_PASS", PASS),
        ("MESOSPHERE_HTTP_CREDENTIALS", CREDENTIALS),
    ];
    let _sims: Vec<Proc> = (0..2)
        .map(|i| {
            let mut args = ports(http[i], https[i]);
            args.extend([
                "--disable_http".to_string(),
                format!("--ssl_keystore_path={}", keystore.display()),
            ]);
            bed.marathon(&format!("marathon{i}"), &args, &env)
        })
        .collect();
    let urls: Vec<String> = https
        .iter()
        .map(|p| format!("https://127.0.0.1:{p}"))
        .collect();
    let leader = agreed_leader(client, &urls, Some(CREDENTIALS)).await;
    let leader_port: u16 = leader.rsplit(':').next().unwrap().parse().unwrap();
    assert!(
        https.contains(&leader_port),
        "advertises its HTTPS port: {leader}"
    );
    let (leader_url, standby_url) = if leader_port == https[0] {
        (&urls[0], &urls[1])
    } else {
        (&urls[1], &urls[0])
    };
    for port in http {
        assert!(
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err(),
            "--disable_http leaves the HTTP port {port} closed"
        );
    }

    // Every path needs the credentials, on the standby too (it answers 401 itself).
    for url in [leader_url, standby_url] {
        for path in ["/ping", "/v2/apps", "/metrics"] {
            for basic in [
                None,
                Some("ops:wrong"),
                Some("ops:s3cret:"),
                Some("OPS:s3cret"),
            ] {
                let a = client.get(&format!("{url}{path}"), basic).await.unwrap();
                assert_eq!(a.status, 401, "{url}{path} with {basic:?}: {}", a.body);
                assert_eq!(
                    header(&a, "www-authenticate"),
                    Some("basic realm=\"Mesosphere\"")
                );
                assert_eq!(
                    header(&a, "x-marathon-via"),
                    None,
                    "refused before the proxy"
                );
            }
        }
    }
    let pong = client
        .get(&format!("{leader_url}/ping"), Some(CREDENTIALS))
        .await
        .unwrap();
    assert_eq!((pong.status.as_u16(), pong.body.as_str()), (200, "pong"));
    assert_eq!(
        header(&pong, "x-marathon-leader"),
        Some(format!("https://127.0.0.1:{leader_port}").as_str())
    );

    // Through the standby: proxied over HTTPS with the client's credentials.
    let apps = client
        .get(&format!("{standby_url}/v2/apps"), Some(CREDENTIALS))
        .await
        .unwrap();
    assert_eq!(apps.status, 200, "{}", apps.body);
    assert!(header(&apps, "x-marathon-via").is_some_and(|v| v.starts_with("1.1 127.0.0.1:")));
    let app = json!({"id": "/tls-web", "instances": 1, "cpus": 0.1, "mem": 16, "cmd": "sleep 100"});
    let created = client
        .send(
            Method::POST,
            &format!("{standby_url}/v2/apps"),
            Some(CREDENTIALS),
            Some(app),
        )
        .await
        .unwrap();
    assert_eq!(created.status, 201, "{}", created.body);
    let listed = client
        .get(&format!("{leader_url}/v2/apps"), Some(CREDENTIALS))
        .await
        .unwrap();
    assert!(listed.body.contains("/tls-web"), "{}", listed.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_verifies_the_leader_certificate_and_host_name() {
    let bed = Bed::start().await;
    let client = &bed.client;
    // Names `localhost`, while the sims advertise 127.0.0.1.
    let shared = bed.pki.keystore("shared", "DNS:localhost");
    let other_leaf = bed.pki.keystore("other", "DNS:localhost");
    let sim = |name: &str, https: u16, keystore: &Path, extra: &[&str]| {
        let mut args = ports(free_port(), https);
        args.extend([
            "--disable_http".to_string(),
            format!("--ssl_keystore_path={}", keystore.display()),
            format!("--ssl_keystore_password={PASS}"),
        ]);
        args.extend(extra.iter().map(|s| s.to_string()));
        bed.marathon(name, &args, &[])
    };
    let leader_port = free_port();
    let _leader = sim("leader", leader_port, &shared, &[]);
    let leader_url = format!("https://localhost:{leader_port}");
    agreed_leader(client, std::slice::from_ref(&leader_url), None).await;

    // Java trusts a keystore's own leaf, not the CA bundled in its chain: a leader
    // with another leaf of the same CA is not trusted.
    let standbys = [
        (
            "strict",
            &shared,
            &[][..],
            Some("certificate not valid for name \"127.0.0.1\""),
        ),
        (
            "ignoring",
            &shared,
            &["--leader_proxy_ssl_ignore_hostname"][..],
            None,
        ),
        (
            "other-leaf",
            &other_leaf,
            &["--leader_proxy_ssl_ignore_hostname"][..],
            Some("UnknownIssuer"),
        ),
    ];
    let mut procs = Vec::new();
    for (name, keystore, extra, failure) in standbys {
        let port = free_port();
        procs.push(sim(name, port, keystore, extra));
        let url = format!("https://localhost:{port}/v2/apps");
        // Every path is proxied, `/v2/leader` too: wait for an answer about the leader.
        let a = eventually(Duration::from_secs(30), "the standby's answer", || async {
            let a = client.get(&url, None).await.ok()?;
            (!a.body.contains("Could not determine the current leader")).then_some(a)
        })
        .await;
        match failure {
            None => assert_eq!(a.status, 200, "{name}: {}", a.body),
            Some(reason) => {
                assert_eq!(a.status, 502, "{name}: {}", a.body);
                let body: serde_json::Value = serde_json::from_str(&a.body).unwrap();
                let message = body["message"].as_str().unwrap_or_default();
                assert!(
                    message.starts_with("Could not proxy to the leader"),
                    "{name}: {message}"
                );
                assert!(message.contains(reason), "{name}: {message}");
            }
        }
    }
}

/// Runs marathon-sim expecting it to exit at start-up; returns its exit code and output.
fn failed_start(args: &[String], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = TestDir::new();
    let mut all = sim_args("zk://127.0.0.1:1/marathon");
    all.extend_from_slice(args);
    let log = dir.path().join("start.log");
    let mut proc = Proc::spawn_with_env(env!("CARGO_BIN_EXE_marathon-sim"), &all, env, &log);
    let code = proc.wait_exit(Duration::from_secs(20));
    (code, proc.log_text())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_checks_connectors_and_keystore() {
    let dir = TestDir::new();
    let pki = Pki::new(dir.path());
    let keystore = pki
        .keystore("marathon", "IP:127.0.0.1")
        .display()
        .to_string();
    let path = format!("--ssl_keystore_path={keystore}");
    let neither = "Invalid configuration: Neither HTTP nor HTTPS support has been configured.";
    // (arguments, environment, the message on stderr)
    type Case<'a> = (Vec<String>, Vec<(&'a str, &'a str)>, String);
    let cases: Vec<Case> = vec![
        (vec!["--disable_http".into()], vec![], neither.into()),
        // HTTPS needs the password too: a path alone configures nothing.
        (
            vec!["--disable_http".into(), path.clone()],
            vec![],
            neither.into(),
        ),
        (
            vec!["--disable_http".into()],
            vec![
                ("MESOSPHERE_KEYSTORE_PATH", "/nonexistent/k.p12"),
                ("MESOSPHERE_KEYSTORE_PASS", PASS),
            ],
            "requirement failed: /nonexistent/k.p12 is invalid or not readable!".into(),
        ),
        (
            vec![
                "--disable_http".into(),
                path.clone(),
                "--ssl_keystore_password=nope".into(),
            ],
            vec![],
            format!("Failed to load the keystore {keystore}: keystore password was incorrect"),
        ),
        (
            vec![path.clone()],
            vec![("MARATHON_SSL_KEYSTORE_PASSWORD", "nope")],
            format!("Failed to load the keystore {keystore}: keystore password was incorrect"),
        ),
        (
            vec!["--disable_disable_http".into()],
            vec![],
            "[scallop] Error: Unknown option 'disable_disable_http'".into(),
        ),
    ];
    for (args, env, message) in cases {
        let (code, output) = failed_start(&args, &env);
        assert_eq!(code, Some(1), "{args:?} {env:?}: {output}");
        assert!(output.contains(&message), "{args:?} {env:?}: {output}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_and_https_together_and_malformed_credentials() {
    let bed = Bed::start().await;
    let client = &bed.client;
    let keystore = bed.pki.keystore("marathon", "IP:127.0.0.1");

    // Both connectors, credentials by flag, another realm.
    let (http, https) = (free_port(), free_port());
    let mut args = ports(http, https);
    args.extend([
        format!("--ssl_keystore_path={}", keystore.display()),
        format!("--ssl_keystore_password={PASS}"),
        format!("--http_credentials={CREDENTIALS}"),
        "--http_realm=Ops Area".to_string(),
    ]);
    let both = bed.marathon("both", &args, &[]);
    let https_url = format!("https://127.0.0.1:{https}");
    agreed_leader(client, std::slice::from_ref(&https_url), Some(CREDENTIALS)).await;
    let refused = client
        .get(&format!("{https_url}/ping"), None)
        .await
        .unwrap();
    assert_eq!(refused.status, 401);
    assert_eq!(
        header(&refused, "www-authenticate"),
        Some("basic realm=\"Ops Area\"")
    );
    let over_http = get(&format!("http://127.0.0.1:{http}/ping")).await.unwrap();
    assert_eq!(
        over_http.status, 401,
        "the HTTP connector has the same constraint"
    );
    let pong = client
        .get(&format!("{https_url}/ping"), Some(CREDENTIALS))
        .await
        .unwrap();
    assert_eq!(pong.status, 200);
    assert_eq!(
        header(&pong, "x-marathon-leader"),
        Some(format!("http://127.0.0.1:{http}").as_str()),
        "with HTTP enabled the leader advertises its HTTP port"
    );
    assert!(
        both.log_text()
            .contains("Both HTTP and HTTPS support have been configured.")
    );
    drop(both);

    // `user:password` not matched: Marathon logs it and runs without authentication.
    let http = free_port();
    let env = [("MESOSPHERE_HTTP_CREDENTIALS", "ops")];
    let open = bed.marathon("open", &ports(http, free_port()), &env);
    // 200 once the stopped sim's latch node expired and this one leads.
    eventually(
        Duration::from_secs(30),
        "/ping without credentials",
        || async {
            let r = get(&format!("http://127.0.0.1:{http}/ping")).await?;
            (r.status == 200).then_some(())
        },
    )
    .await;
    assert!(
        open.log_text()
            .contains("The HTTP credentials must be specified in the form of 'user:password'.")
    );
}
