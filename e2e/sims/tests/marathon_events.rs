//! marathon-sim's `/v2/events`, `/v2/queue`, `/v2/apps/{id}/versions` and query
//! parameters, driven with plain HTTP against two Marathons, a master, one agent and
//! real ZooKeeper.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// An open `/v2/events` stream: events as they arrive, and every one seen so far.
struct Events {
    rx: mpsc::UnboundedReceiver<(String, Value)>,
    seen: Vec<(String, Value)>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Events {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `GET url` with `Accept: text/event-stream`; parses `event:`/`data:` frames split
/// at blank lines (CRLF, as Jetty writes them).
async fn open(url: &str) -> Events {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let req = hyper::Request::get(url)
        .header("Accept", "text/event-stream")
        .body(Empty::new())
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/event-stream;charset=utf-8"
    );
    let (tx, rx) = mpsc::unbounded_channel();
    let mut body = resp.into_body();
    let task = tokio::spawn(async move {
        let mut buf = String::new();
        while let Some(Ok(frame)) = body.frame().await {
            let Ok(data) = frame.into_data() else {
                continue;
            };
            buf.push_str(&String::from_utf8_lossy(&data));
            while let Some(end) = buf.find("\r\n\r\n") {
                let block: String = buf.drain(..end + 4).collect();
                let field = |name: &str| {
                    block
                        .split("\r\n")
                        .find_map(|l| l.strip_prefix(name))
                        .map(str::to_string)
                };
                if let (Some(t), Some(d)) = (field("event: "), field("data: ")) {
                    let _ = tx.send((t, serde_json::from_str(&d).unwrap()));
                }
            }
        }
    });
    Events {
        rx,
        seen: Vec::new(),
        task,
    }
}

impl Events {
    /// Reads until an event of `event_type` matching `pred` arrives; returns it.
    async fn expect(&mut self, event_type: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        if let Some((_, v)) = self.seen.iter().find(|(t, v)| t == event_type && pred(v)) {
            return v.clone();
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let got = tokio::time::timeout(left, self.rx.recv()).await;
            let Ok(Some((t, v))) = got else {
                let types: Vec<&str> = self.seen.iter().map(|(t, _)| t.as_str()).collect();
                panic!("no {event_type} event; seen {types:?}");
            };
            self.seen.push((t.clone(), v.clone()));
            if t == event_type && pred(&v) {
                return v;
            }
        }
    }

    /// Index in `seen` of the first `event_type` event matching `pred`.
    fn position(&self, event_type: &str, pred: impl Fn(&Value) -> bool) -> usize {
        self.seen
            .iter()
            .position(|(t, v)| t == event_type && pred(v))
            .unwrap_or_else(|| panic!("no {event_type} seen"))
    }
}

/// Sends `request` as is and returns what the server wrote until it closed.
async fn raw(port: u16, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let read = tcp.read_to_end(&mut out);
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&out).to_string()
}

/// The status of `GET /v2/events` with `header`.
async fn raw_status(port: u16, header: &str) -> u16 {
    let request =
        format!("GET /v2/events HTTP/1.1\r\nHost: x\r\n{header}\r\nConnection: close\r\n\r\n");
    status_of(&raw(port, &request).await)
}

fn status_of(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{answer}"))
}

fn url(port: u16, path: &str) -> String {
    format!("http://127.0.0.1:{port}{path}")
}

async fn json_of(port: u16, path: &str) -> Value {
    let r = send("GET", &url(port, path), None).await;
    assert_eq!(
        r.status,
        200,
        "{path}: {}",
        String::from_utf8_lossy(&r.body)
    );
    r.json().unwrap()
}

fn reason<'a>(steps: &'a Value, name: &str) -> &'a Value {
    steps
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["reason"] == name)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_queue_versions_and_boolean_parameters() {
    let _serial = SERIAL.lock().await;
    let dir = TestDir::new();
    let cluster = SingleMaster::start(dir.path()).await;
    let zk = cluster.zk.connect_string();
    let resources = "cpus:2;mem:1024;disk:1024;ports:[31000-31100]";
    let (_agent, _) = spawn_agent(dir.path(), "agent-0", &cluster.zk_url, resources);
    let ports = [free_port(), free_port()];
    let mut marathons: Vec<Proc> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            spawn_marathon(
                dir.path(),
                &format!("marathon{i}"),
                &cluster.zk_url,
                &zk,
                *p,
            )
        })
        .collect();
    let leader = marathon_leader(&ports, Duration::from_secs(30)).await;
    let standby = *ports.iter().find(|p| **p != leader).unwrap();

    // The stream needs exactly `Accept: text/event-stream` (Jetty compares the value).
    let r = send("GET", &url(leader, "/v2/events"), None).await;
    assert_eq!(r.status, 405, "no Accept header");
    assert!(
        String::from_utf8_lossy(&r.body).contains("HTTP method GET is not supported by this URL")
    );
    assert_eq!(
        raw_status(leader, "Accept: text/event-stream, */*").await,
        405
    );
    // HttpServlet's default doGet refuses HTTP/1.0 with 400.
    let answer = raw(leader, "GET /v2/events HTTP/1.0\r\n\r\n").await;
    assert_eq!(status_of(&answer), 400);
    // A standby redirects the stream to the leader instead of proxying it.
    let r = send(
        "GET",
        &url(standby, "/v2/events?event_type=deployment_success"),
        None,
    )
    .await;
    assert_eq!(r.status, 302);
    assert_eq!(
        r.location.as_deref(),
        Some(url(leader, "/v2/events?event_type=deployment_success").as_str())
    );

    let mut all = open(&url(leader, "/v2/events")).await;
    let attached = all.expect("event_stream_attached", |_| true).await;
    assert_eq!(attached["remoteAddress"], "127.0.0.1");
    let mut successes = open(&url(leader, "/v2/events?event_type=deployment_success")).await;
    {
        // Another consumer comes and goes: attached, then detached once it is gone.
        let mut brief = open(&url(leader, "/v2/events")).await;
        brief.expect("event_stream_attached", |_| true).await;
    }

    // A healthy app: api_post_event, deployment_info, its task's status updates, the
    // health change and the deployment's success, in that order of cause and effect.
    let web = json!({"id": "/web", "cpus": 0.1, "mem": 32,
        "cmd": "echo ok > index.html && exec busybox httpd -f -p 127.0.0.1:$PORT0",
        "healthChecks": [{"protocol": "MESOS_HTTP", "path": "/index.html", "intervalSeconds": 1,
                          "timeoutSeconds": 1, "gracePeriodSeconds": 5}]});
    let r = send("POST", &url(standby, "/v2/apps"), Some(&web)).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let deployment = r.json().unwrap()["deployments"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let post = all.expect("api_post_event", |_| true).await;
    assert_eq!(post["uri"], "/v2/apps");
    assert_eq!(post["clientIp"], "127.0.0.1");
    assert_eq!(post["appDefinition"]["id"], "/web");
    let is_web = |v: &Value| v["appId"] == "/web";
    let info = all
        .expect("deployment_info", |v| {
            v["plan"]["id"] == deployment.as_str()
        })
        .await;
    assert_eq!(
        info["currentStep"]["actions"],
        json!([{"action": "StartApplication", "app": "/web"}])
    );
    let running = all
        .expect("status_update_event", |v| {
            is_web(v) && v["taskStatus"] == "TASK_RUNNING"
        })
        .await;
    assert_eq!(running["host"], "agent-0");
    assert_eq!(running["ipAddresses"][0]["ipAddress"], "127.0.0.1");
    let task_id = running["taskId"].as_str().unwrap().to_string();
    let healthy = all
        .expect("health_status_changed_event", |v| {
            is_web(v) && v["alive"] == true
        })
        .await;
    assert_eq!(healthy["instanceId"], task_id.as_str());
    let success = all
        .expect("deployment_success", |v| v["id"] == deployment.as_str())
        .await;
    assert_eq!(success["plan"]["steps"][0]["actions"][0]["app"], "/web");
    let order = [
        all.position("deployment_info", |v| {
            v["plan"]["id"] == deployment.as_str()
        }),
        all.position("status_update_event", |v| v["taskId"] == task_id.as_str()),
        all.position("health_status_changed_event", is_web),
        all.position("deployment_success", |v| v["id"] == deployment.as_str()),
    ];
    assert!(order.is_sorted(), "events out of order: {order:?}");
    all.expect("event_stream_detached", |_| true).await;
    // The filtered stream got only what it asked for.
    let (t, v) = successes.rx.recv().await.unwrap();
    assert_eq!(
        (t.as_str(), &v["id"]),
        ("deployment_success", &json!(deployment))
    );

    // `embed` takes any of InfoEmbedResolver's prefixes.
    let apps = json_of(leader, "/v2/apps?embed=app.tasks&id=WE").await;
    assert_eq!(apps["apps"][0]["tasks"][0]["id"], task_id.as_str());

    // An app no agent can take waits in the queue, with why.
    let big = json!({"id": "/big", "cmd": "sleep 600", "cpus": 8, "mem": 32});
    let r = send("POST", &url(leader, "/v2/apps"), Some(&big)).await;
    assert_eq!(r.status, 201);
    let first = r.json().unwrap()["deployments"][0]["id"].clone();
    let queued = eventually(
        Duration::from_secs(15),
        "/big offers in the queue",
        || async {
            let q = json_of(leader, "/v2/queue?embed=lastUnusedOffers").await;
            let item = q["queue"].as_array()?.first()?.clone();
            (item["processedOffersSummary"]["processedOffersCount"].as_u64()? >= 2).then_some(item)
        },
    )
    .await;
    assert_eq!(queued["app"]["id"], "/big");
    assert_eq!(queued["count"], 1);
    assert_eq!(queued["role"], "*");
    assert_eq!(
        queued["delay"],
        json!({"timeLeftSeconds": 0, "overdue": true})
    );
    assert!(queued["since"].is_string());
    let summary = &queued["processedOffersSummary"];
    assert_eq!(
        summary["unusedOffersCount"],
        summary["processedOffersCount"]
    );
    assert!(summary["lastUnusedOfferAt"].is_string());
    assert!(summary.get("lastUsedOfferAt").is_none());
    let attempt = &summary["rejectSummaryLaunchAttempt"];
    assert_eq!(
        reason(attempt, "InsufficientCpus")["declined"],
        summary["processedOffersCount"]
    );
    assert_eq!(reason(attempt, "UnfulfilledConstraint")["declined"], 0);
    // The funnel: every offer was declined at InsufficientCpus, none is left after it.
    assert_eq!(reason(attempt, "InsufficientMemory")["processed"], 0);
    assert_eq!(
        reason(&summary["rejectSummaryLastOffers"], "InsufficientCpus"),
        &json!({"reason": "InsufficientCpus", "declined": 1, "processed": 1})
    );
    let offer = &queued["lastUnusedOffers"][0];
    assert_eq!(offer["reason"], json!(["InsufficientCpus"]));
    assert_eq!(offer["offer"]["hostname"], "agent-0");
    let q = json_of(leader, "/v2/queue").await;
    assert_eq!(
        q["queue"].as_array().unwrap().len(),
        1,
        "/web is not queued"
    );
    assert!(q["queue"][0].get("lastUnusedOffers").is_none());
    let r = send("DELETE", &url(leader, "/v2/queue/big/delay"), None).await;
    assert_eq!(r.status, 204);
    let r = send("DELETE", &url(leader, "/v2/queue/web/delay"), None).await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json().unwrap()["message"],
        "Application /web not found in tasks queue."
    );

    // Booleans as JAX-RS reads them: `yes` is false (locked), any case of `true` forces,
    // and the forced-over deployment fails as cancelled.
    let r = send(
        "PUT",
        &url(leader, "/v2/apps/big?force=yes"),
        Some(&json!({"mem": 48})),
    )
    .await;
    assert_eq!(r.status, 409, "force=yes is false");
    let r = send(
        "PUT",
        &url(leader, "/v2/apps/big?force=True"),
        Some(&json!({"mem": 48})),
    )
    .await;
    assert_eq!(
        r.status,
        200,
        "force=True: {}",
        String::from_utf8_lossy(&r.body)
    );
    let failed = all.expect("deployment_failed", |v| v["id"] == first).await;
    assert_eq!(failed["reason"], "The upgrade has been cancelled");
    let r = send(
        "PUT",
        &url(leader, "/v2/apps/big?force=TRUE"),
        Some(&json!({"mem": 64})),
    )
    .await;
    assert_eq!(r.status, 200, "force=TRUE");

    // Versions: newest first, each readable; a re-created app starts afresh.
    let versions = json_of(leader, "/v2/apps/big/versions").await["versions"].clone();
    let versions: Vec<&str> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(versions.len(), 3, "{versions:?}");
    let mut sorted = versions.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(versions, sorted, "newest first");
    let current = json_of(leader, "/v2/apps/big").await["app"]["version"].clone();
    assert_eq!(versions[0], current);
    let oldest = json_of(leader, &format!("/v2/apps/big/versions/{}", versions[2])).await;
    assert_eq!(
        (oldest["mem"].as_f64(), oldest["version"].as_str()),
        (Some(32.0), Some(versions[2]))
    );
    let same_instant = versions[1].replace('Z', "+00:00");
    let middle = json_of(leader, &format!("/v2/apps/big/versions/{same_instant}")).await;
    assert_eq!(middle["mem"].as_f64(), Some(48.0));
    let r = send(
        "GET",
        &url(leader, "/v2/apps/big/versions/2000-01-01T00:00:00.000Z"),
        None,
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json().unwrap()["message"],
        "App '/big' does not exist in version 2000-01-01T00:00:00.000Z"
    );
    let r = send("GET", &url(leader, "/v2/apps/nope/versions"), None).await;
    assert_eq!(r.status, 404);
    // The standby proxies versions, read from what the leader stored.
    let through_standby = json_of(standby, "/v2/apps/web/versions").await;
    assert_eq!(through_standby["versions"].as_array().unwrap().len(), 1);

    // DELETE's `force` defaults to true; an explicit `false` is respected.
    let r = send("DELETE", &url(leader, "/v2/apps/big?force=false"), None).await;
    assert_eq!(r.status, 409, "force=false on a locked app");
    let r = send("DELETE", &url(leader, "/v2/apps/big?force="), None).await;
    assert_eq!(r.status, 200, "a blank value is the default (true)");
    eventually(Duration::from_secs(15), "/big to be gone", || async {
        (send("GET", &url(leader, "/v2/apps/big"), None).await.status == 404).then_some(())
    })
    .await;
    let r = send("POST", &url(leader, "/v2/apps"), Some(&big)).await;
    assert_eq!(r.status, 201);
    let versions = json_of(leader, "/v2/apps/big/versions").await;
    assert_eq!(
        versions["versions"].as_array().unwrap().len(),
        1,
        "{versions}"
    );

    // The history is in ZooKeeper: the next leader lists the same versions.
    let web_versions = json_of(leader, "/v2/apps/web/versions").await;
    let old = ports.iter().position(|p| *p == leader).unwrap();
    marathons[old].kill();
    assert_eq!(
        marathon_leader(&[standby], Duration::from_secs(30)).await,
        standby
    );
    let after = eventually(
        Duration::from_secs(15),
        "the new leader's versions",
        || async {
            let r = send("GET", &url(standby, "/v2/apps/web/versions"), None).await;
            (r.status == 200).then(|| r.json()).flatten()
        },
    )
    .await;
    assert_eq!(after, web_versions);
    let big_after = json_of(standby, "/v2/apps/big/versions").await;
    assert_eq!(big_after, versions, "the dropped history stays dropped");
}
