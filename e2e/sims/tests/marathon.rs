//! marathon-sim (two instances, HA) with a master, two agents and real ZooKeeper.

mod common;

use std::time::Duration;

use common::*;
use mesos_sims::http_client::{HttpClient, Response};
use serde_json::{Value, json};

/// Agent 0 (JSON form) also offers `/dev/shm`, a mount point on any Linux host, as a
/// 100 MB MOUNT disk.
const MOUNT_AGENT_RESOURCES: &str = r#"[
  {"name":"cpus","type":"SCALAR","scalar":{"value":2}},
  {"name":"mem","type":"SCALAR","scalar":{"value":1024}},
  {"name":"disk","type":"SCALAR","scalar":{"value":1024}},
  {"name":"ports","type":"RANGES","ranges":{"range":[{"begin":31000,"end":31100}]}},
  {"name":"disk","type":"SCALAR","scalar":{"value":100},"disk":{"source":{"type":"MOUNT","mount":{"root":"/dev/shm"}}}}
]"#;

async fn send(method: &str, url: &str, body: Option<&Value>) -> Response {
    let method = hyper::Method::from_bytes(method.as_bytes()).unwrap();
    HttpClient::default()
        .send(method, url, body, Duration::from_secs(15))
        .await
        .unwrap()
}

async fn app(port: u16, id: &str) -> Option<Value> {
    let r = get(&format!("http://127.0.0.1:{port}/v2/apps/{id}")).await?;
    (r.status == 200).then(|| r.json().unwrap()["app"].clone())
}

async fn deployments(port: u16) -> Vec<Value> {
    get(&format!("http://127.0.0.1:{port}/v2/deployments"))
        .await
        .unwrap()
        .json()
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_locks_health_checks_and_placement() {
    let _serial = SERIAL.lock().await;
    let dir = TestDir::new();
    let cluster = SingleMaster::start(dir.path()).await;
    let (zk, master, mesos) = (&cluster.zk, &cluster.master, cluster.zk_url.clone());
    let mut agent_ports = Vec::new();
    let mut _agents = Vec::new();
    for (i, rack) in ["r1", "r2"].iter().enumerate() {
        let port = free_port();
        let args = vec![
            format!("--master={mesos}"),
            format!("--work_dir={}", dir.path().join(format!("a{i}")).display()),
            "--ip=127.0.0.1".into(),
            format!("--port={port}"),
            format!(
                "--resources={}",
                if i == 0 {
                    MOUNT_AGENT_RESOURCES
                } else {
                    "cpus:2;mem:1024;disk:1024;ports:[31000-31100]"
                }
            ),
            format!("--attributes=rack:{rack}"),
            format!("--hostname=agent-{i}"),
        ];
        _agents.push(Proc::spawn(
            env!("CARGO_BIN_EXE_mesos-agent-sim"),
            &args,
            &dir.path().join(format!("a{i}.log")),
        ));
        agent_ports.push(port);
    }
    eventually(Duration::from_secs(20), "two active agents", || async {
        let r = post(
            &format!("http://127.0.0.1:{}/api/v1", master.port),
            &json!({"type": "GET_AGENTS"}),
        )
        .await?;
        let n = r.json()?["get_agents"]["agents"]
            .as_array()?
            .iter()
            .filter(|a| a["active"] == true)
            .count();
        (n == 2).then_some(())
    })
    .await;

    let marathon_ports = [free_port(), free_port()];
    let mut marathons: Vec<Proc> = marathon_ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            let args: Vec<String> = [
                "--master",
                &mesos,
                "--zk",
                &format!("zk://{}/marathon", zk.connect_string()),
                "--http_port",
                &port.to_string(),
                "--http_address",
                "127.0.0.1",
                "--hostname",
                "127.0.0.1",
                "--zk_session_timeout",
                "2000",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            Proc::spawn(
                env!("CARGO_BIN_EXE_marathon-sim"),
                &args,
                &dir.path().join(format!("marathon{i}.log")),
            )
        })
        .collect();
    let leader = eventually(Duration::from_secs(20), "a Marathon leader", || async {
        let mut leaders = Vec::new();
        for p in marathon_ports {
            leaders.push(
                get(&format!("http://127.0.0.1:{p}/v2/leader"))
                    .await?
                    .json()?["leader"]
                    .as_str()?
                    .to_string(),
            );
        }
        (leaders[0] == leaders[1]).then(|| leaders[0].clone())
    })
    .await;
    let leader_port: u16 = leader.rsplit(':').next().unwrap().parse().unwrap();
    let standby = *marathon_ports.iter().find(|p| **p != leader_port).unwrap();
    let writes = |p: u16| async move {
        get(&format!("http://127.0.0.1:{p}/metrics"))
            .await
            .unwrap()
            .json()
            .unwrap()["counters"]["sim.http.write-requests"]["count"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(writes(leader_port).await, 0);

    // Create through the standby: proxied to the leader, 201 with a deployment.
    let web = json!({"id": "/web", "instances": 2, "cpus": 0.1, "mem": 32,
        "cmd": "echo ok > index.html && exec busybox httpd -f -p 127.0.0.1:$PORT0",
        "constraints": [["hostname", "UNIQUE"]],
        "healthChecks": [{"protocol": "MESOS_HTTP", "path": "/index.html", "intervalSeconds": 1, "timeoutSeconds": 1, "gracePeriodSeconds": 5}]});
    let r = send(
        "POST",
        &format!("http://127.0.0.1:{standby}/v2/apps"),
        Some(&web),
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let created = r.json().unwrap();
    let deployment = created["deployments"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(created["tasksRunning"], 0);
    assert_eq!(r.location.as_deref(), Some("/v2/apps/web"));
    let r = send(
        "POST",
        &format!("http://127.0.0.1:{leader_port}/v2/apps"),
        Some(&web),
    )
    .await;
    assert_eq!(r.status, 409);
    assert_eq!(
        r.json().unwrap()["message"],
        "An app with id [/web] already exists."
    );

    // A second change while the deployment runs: locked.
    let r = send(
        "PUT",
        &format!("http://127.0.0.1:{leader_port}/v2/apps/web"),
        Some(&json!({"cmd": "sleep 100"})),
    )
    .await;
    assert_eq!(r.status, 409);
    let body = r.json().unwrap();
    assert!(body["message"].as_str().unwrap().starts_with(
        "App is locked by one or more deployments. Override with the option '?force=true'."
    ));
    assert_eq!(body["deployments"], json!([{"id": deployment}]));

    // The deployment finishes once two healthy instances run, one per agent.
    eventually(
        Duration::from_secs(30),
        "the /web deployment to finish",
        || async {
            let a = app(leader_port, "web").await?;
            (deployments(leader_port).await.is_empty()
                && a["tasksHealthy"] == 2
                && a["tasksRunning"] == 2)
                .then_some(())
        },
    )
    .await;
    let a = app(standby, "web").await.unwrap();
    let hosts: Vec<&str> = a["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slaveId"].as_str().unwrap())
        .collect();
    assert_ne!(
        hosts[0], hosts[1],
        "UNIQUE hostname puts the instances on different agents"
    );
    for port in &agent_ports {
        let state = get(&format!("http://127.0.0.1:{port}/state"))
            .await
            .unwrap()
            .json()
            .unwrap();
        let tasks = &state["frameworks"][0]["executors"][0]["tasks"];
        assert_eq!(tasks[0]["name"], "/web");
        assert_eq!(tasks[0]["state"], "TASK_RUNNING");
    }

    // A broken health check keeps the deployment running until it is cancelled.
    let broken = json!({"id": "/broken", "cmd": "sleep 600", "cpus": 0.1, "mem": 16,
        "healthChecks": [{"protocol": "MESOS_HTTP", "path": "/", "intervalSeconds": 1, "timeoutSeconds": 1,
                          "gracePeriodSeconds": 1, "maxConsecutiveFailures": 0}]});
    let r = send(
        "POST",
        &format!("http://127.0.0.1:{leader_port}/v2/apps"),
        Some(&broken),
    )
    .await;
    assert_eq!(r.status, 201);
    eventually(
        Duration::from_secs(15),
        "/broken to be unhealthy",
        || async {
            let a = app(leader_port, "broken").await?;
            (a["tasksRunning"] == 1 && a["tasksUnhealthy"] == 1).then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let a = app(leader_port, "broken").await.unwrap();
    assert_eq!(a["tasksHealthy"], 0);
    let running: Vec<Value> = deployments(leader_port).await;
    assert_eq!(running.len(), 1);
    assert_eq!(running[0]["affectedApps"], json!(["/broken"]));
    let id = running[0]["id"].as_str().unwrap();
    let r = send(
        "DELETE",
        &format!("http://127.0.0.1:{leader_port}/v2/deployments/{id}?force=true"),
        None,
    )
    .await;
    assert_eq!(r.status, 202);
    assert!(deployments(leader_port).await.is_empty());
    let r = send(
        "DELETE",
        &format!("http://127.0.0.1:{leader_port}/v2/deployments/{id}"),
        None,
    )
    .await;
    assert_eq!(r.status, 404);
    let r = send(
        "DELETE",
        &format!("http://127.0.0.1:{leader_port}/v2/apps/broken"),
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    eventually(Duration::from_secs(15), "/broken to be gone", || async {
        app(leader_port, "broken").await.is_none().then_some(())
    })
    .await;

    // Persistent MOUNT volumes: only agent 0 has a MOUNT disk, and only one, so one of
    // two instances runs (there) and the deployment waits for an offer that never comes.
    let db = json!({"id": "/db", "cmd": "sleep 600", "cpus": 0.1, "mem": 16, "instances": 2,
        "container": {"type": "MESOS", "volumes": [
            {"containerPath": "data", "mode": "RW", "persistent": {"type": "mount", "size": 50}}]}});
    let r = send(
        "POST",
        &format!("http://127.0.0.1:{leader_port}/v2/apps"),
        Some(&db),
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let agent0 = get(&format!("http://127.0.0.1:{}/state", agent_ports[0]))
        .await
        .unwrap()
        .json()
        .unwrap()["id"]
        .clone();
    eventually(
        Duration::from_secs(15),
        "one /db instance on agent 0",
        || async {
            let a = app(leader_port, "db").await?;
            (a["tasksRunning"] == 1 && a["tasks"][0]["slaveId"] == agent0).then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let a = app(leader_port, "db").await.unwrap();
    assert_eq!(a["tasks"].as_array().unwrap().len(), 1);
    // Resident: the disk is reserved and holds the task's volume at the master; a killed task
    // comes back on its own reservation; only a wipe gives it a new volume.
    let task = a["tasks"][0]["id"].as_str().unwrap().to_string();
    let volume = a["tasks"][0]["localVolumes"][0]["persistenceId"].clone();
    assert!(
        volume.as_str().is_some_and(|v| v.starts_with("db#data#")),
        "{a}"
    );
    let volumes_at_master = || async {
        let r = post(
            &format!("http://127.0.0.1:{}/api/v1", master.port),
            &json!({"type": "GET_AGENTS"}),
        )
        .await
        .unwrap();
        let agents = r.json().unwrap()["get_agents"]["agents"].clone();
        let mut out = Vec::new();
        for ag in agents.as_array().unwrap() {
            for r in ag["total_resources"].as_array().unwrap() {
                if let Some(id) = r["disk"]["persistence"]["id"].as_str() {
                    out.push((ag["agent_info"]["id"]["value"].clone(), json!(id)));
                }
            }
        }
        out
    };
    assert_eq!(
        volumes_at_master().await,
        vec![(agent0.clone(), volume.clone())]
    );
    let started = a["tasks"][0]["startedAt"].clone();
    let tasks_url = format!("http://127.0.0.1:{leader_port}/v2/apps/db/tasks/{task}");
    let r = send("DELETE", &format!("{tasks_url}?scale=true&wipe=true"), None).await;
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    let r = send("DELETE", &tasks_url, None).await;
    assert_eq!(r.status, 200);
    eventually(
        Duration::from_secs(15),
        "the killed /db task back on its volume",
        || async {
            let a = app(leader_port, "db").await?;
            let t = &a["tasks"][0];
            let back = a["tasksRunning"] == 1
                && t["slaveId"] == agent0
                && t["localVolumes"][0]["persistenceId"] == volume
                && t["startedAt"].is_string()
                && t["startedAt"] != started;
            back.then_some(())
        },
    )
    .await;
    let r = send("DELETE", &format!("{tasks_url}?wipe=true"), None).await;
    assert_eq!(r.status, 200);
    let wiped = eventually(
        Duration::from_secs(20),
        "a wiped /db instance on a new volume",
        || async {
            let a = app(leader_port, "db").await?;
            let t = &a["tasks"][0];
            let fresh = a["tasksRunning"] == 1 && t["localVolumes"][0]["persistenceId"] != volume;
            fresh.then(|| t["localVolumes"][0]["persistenceId"].clone())
        },
    )
    .await;
    assert_eq!(volumes_at_master().await, vec![(agent0.clone(), wiped)]);
    assert_eq!(
        a["upgradeStrategy"],
        json!({"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.0})
    );
    assert!(
        deployments(leader_port)
            .await
            .iter()
            .any(|d| d["affectedApps"] == json!(["/db"]))
    );
    let r = send(
        "DELETE",
        &format!("http://127.0.0.1:{leader_port}/v2/apps/db"),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "DELETE forces by default");
    eventually(Duration::from_secs(15), "/db to be gone", || async {
        app(leader_port, "db").await.is_none().then_some(())
    })
    .await;
    let released = eventually(
        Duration::from_secs(10),
        "the deleted app's volume destroyed",
        || async { volumes_at_master().await.is_empty().then_some(()) },
    );
    released.await;

    // Scaling keeps running instances; validation and 404s have Marathon's bodies.
    let before: Vec<Value> = app(leader_port, "web").await.unwrap()["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].clone())
        .collect();
    let r = send(
        "PUT",
        &format!("http://127.0.0.1:{leader_port}/v2/apps/web"),
        Some(&json!({"instances": 1})),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.json().unwrap()["deploymentId"].is_string());
    eventually(Duration::from_secs(15), "scale to 1", || async {
        let a = app(leader_port, "web").await?;
        let ids: Vec<Value> = a["tasks"]
            .as_array()?
            .iter()
            .map(|t| t["id"].clone())
            .collect();
        (ids.len() == 1 && before.contains(&ids[0]) && deployments(leader_port).await.is_empty())
            .then_some(())
    })
    .await;
    let r = send(
        "POST",
        &format!("http://127.0.0.1:{leader_port}/v2/apps"),
        Some(&json!({"id": "/Bad", "cmd": "x", "upgradeStrategy": {"minimumHealthCapacity": 2}})),
    )
    .await;
    assert_eq!(r.status, 422);
    let body = r.json().unwrap();
    assert_eq!(body["message"], "Object is not valid");
    assert!(
        body["details"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["path"] == "/upgradeStrategy/minimumHealthCapacity")
    );
    let r = send(
        "GET",
        &format!("http://127.0.0.1:{standby}/v2/apps/nope"),
        None,
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.json().unwrap()["message"].clone()),
        (404, json!("App '/nope' does not exist"))
    );

    // Failover: the standby takes over the stored apps and adopts the running instance.
    let survivor = app(leader_port, "web").await.unwrap()["tasks"][0]["id"].clone();
    let leader_index = marathon_ports
        .iter()
        .position(|p| *p == leader_port)
        .unwrap();
    let w = writes(leader_port).await;
    assert!(w >= 7, "{w} writes counted");
    marathons[leader_index].kill();
    eventually(
        Duration::from_secs(20),
        "the standby to take over /web",
        || async {
            let l = get(&format!("http://127.0.0.1:{standby}/v2/leader"))
                .await?
                .json()?;
            let a = app(standby, "web").await?;
            let tasks = a["tasks"].as_array()?.clone();
            (l["leader"] == format!("127.0.0.1:{standby}").as_str()
                && tasks.len() == 1
                && tasks[0]["id"] == survivor
                && a["tasksHealthy"] == 1)
                .then_some(())
        },
    )
    .await;
    let left = deployments(standby).await;
    assert!(left.is_empty(), "{left:?}");
    assert!(app(standby, "broken").await.is_none());
    let leader_port = standby;

    // A config change rolls the instances per upgradeStrategy: with minimumHealthCapacity
    // 0.5 and maximumOverCapacity 0 at most 2 run and at least one is healthy throughout.
    let old_ids: Vec<Value> = app(leader_port, "web").await.unwrap()["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].clone())
        .collect();
    let upgrade = json!({"instances": 2, "cmd": "echo v2 > index.html && exec busybox httpd -f -p 127.0.0.1:$PORT0",
                         "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0}});
    let r = send(
        "PUT",
        &format!("http://127.0.0.1:{leader_port}/v2/apps/web"),
        Some(&upgrade),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let version = r.json().unwrap()["version"].clone();
    eventually(Duration::from_secs(30), "the rolling upgrade", || async {
        let a = app(leader_port, "web").await?;
        assert!(a["tasksRunning"].as_u64()? <= 2, "over capacity: {a}");
        assert!(
            a["tasksHealthy"].as_u64()? >= 1,
            "below minimum health: {a}"
        );
        let tasks = a["tasks"].as_array()?.clone();
        let done = tasks.len() == 2
            && tasks
                .iter()
                .all(|t| t["version"] == version && !old_ids.contains(&t["id"]))
            && a["tasksHealthy"] == 2
            && deployments(leader_port).await.is_empty();
        done.then_some(())
    })
    .await;

    // Killing one instance: Marathon replaces it.
    let listed = get(&format!(
        "http://127.0.0.1:{leader_port}/v2/apps?embed=apps.tasks"
    ))
    .await
    .unwrap()
    .json()
    .unwrap();
    let victim = listed["apps"][0]["tasks"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = send(
        "DELETE",
        &format!("http://127.0.0.1:{leader_port}/v2/apps/web/tasks/{victim}"),
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json().unwrap()["task"]["id"], victim.as_str());
    eventually(
        Duration::from_secs(20),
        "a replacement instance",
        || async {
            let a = app(leader_port, "web").await?;
            let ids: Vec<&str> = a["tasks"]
                .as_array()?
                .iter()
                .filter_map(|t| t["id"].as_str())
                .collect();
            (ids.len() == 2 && !ids.contains(&victim.as_str()) && a["tasksHealthy"] == 2)
                .then_some(())
        },
    )
    .await;

    // Reads do not count as writes.
    let w = writes(leader_port).await;
    for _ in 0..3 {
        app(standby, "web").await.unwrap();
    }
    assert_eq!(writes(leader_port).await, w);
}
