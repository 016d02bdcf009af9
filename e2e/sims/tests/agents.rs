//! mesos-agent-sim with a mesos-master-sim and a real ZooKeeper server.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

struct AgentSpec {
    zk: String,
    port: u16,
    work_dir: PathBuf,
    resources: String,
    extra: Vec<String>,
}

impl AgentSpec {
    fn args(&self) -> Vec<String> {
        let mut args = vec![
            format!("--master={}", self.zk),
            format!("--work_dir={}", self.work_dir.display()),
            "--ip=127.0.0.1".to_string(),
            format!("--port={}", self.port),
            format!("--resources={}", self.resources),
            "--attributes=rack:r1;zone:west".to_string(),
            "--zk_session_timeout=2secs".to_string(),
        ];
        args.extend(self.extra.iter().cloned());
        args
    }

    fn start(&self, log: &Path) -> Proc {
        Proc::spawn(env!("CARGO_BIN_EXE_mesos-agent-sim"), &self.args(), log)
    }
}

async fn api(master: u16, call: Value) -> mesos_sims::http_client::Response {
    post(&format!("http://127.0.0.1:{master}/api/v1"), &call)
        .await
        .unwrap()
}

async fn agents(master: u16) -> Vec<Value> {
    let r = api(master, json!({"type": "GET_AGENTS"})).await;
    assert_eq!(r.status, 200);
    r.json().unwrap()["get_agents"]["agents"]
        .as_array()
        .unwrap()
        .clone()
}

/// Waits until the agent on `port` reports an id and the master lists it; returns the id.
async fn registered(port: u16, master: u16) -> String {
    eventually(Duration::from_secs(20), "agent registration", || async {
        let id = get(&format!("http://127.0.0.1:{port}/state"))
            .await?
            .json()?["id"]
            .as_str()?
            .to_string();
        let listed = agents(master)
            .await
            .iter()
            .any(|a| a["agent_info"]["id"]["value"] == id.as_str());
        (!id.is_empty() && listed).then_some(id)
    })
    .await
}

async fn agent_state(port: u16) -> Value {
    get(&format!("http://127.0.0.1:{port}/state"))
        .await
        .unwrap()
        .json()
        .unwrap()
}

/// Live processes whose command line contains `token` (zombies excluded).
fn processes_with(token: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
        })
        .filter(|e| {
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline)
                .replace('\0', " ")
                .contains(token)
                && !std::fs::read_to_string(e.path().join("stat"))
                    .unwrap_or_default()
                    .contains(") Z ")
        })
        .count()
}

fn process_alive(pid: u64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_info_checkpoint_incompatible_restart_drain_and_task_loss() {
    let _serial = SERIAL.lock().await;
    let dir = TestDir::new();
    let cluster = SingleMaster::start(dir.path()).await;
    let (master, zk_url) = (&cluster.master, cluster.zk_url.clone());

    let spec = AgentSpec {
        zk: zk_url,
        port: free_port(),
        work_dir: dir.path().join("a"),
        resources: "cpus:2;mem:1024;disk:2048;ports:[31000-31010]".into(),
        extra: vec![],
    };
    let mut agent = spec.start(&dir.path().join("a1.log"));
    let id = registered(spec.port, master.port).await;
    let latest = std::fs::read_link(spec.work_dir.join("meta/slaves/latest")).unwrap();
    assert_eq!(latest.file_name().unwrap().to_string_lossy(), id);
    let listed = agents(master.port).await;
    assert_eq!(listed[0]["agent_info"]["hostname"], "127.0.0.1");
    assert!(
        listed[0]["agent_info"]["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "rack")
    );
    let state: Value = get(&format!("http://127.0.0.1:{}/state", master.port))
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(state["slaves"][0]["resources"]["cpus"], json!(2.0));
    assert_eq!(state["slaves"][0]["resources"]["ports"], "[31000-31010]");
    assert_eq!(state["slaves"][0]["attributes"]["zone"], "west");

    // A plain restart keeps the id.
    agent.kill();
    let mut agent = spec.start(&dir.path().join("a2.log"));
    assert_eq!(registered(spec.port, master.port).await, id);
    agent.kill();

    // Changed resources: refused with Mesos' text, the agent exits 1.
    let grown = AgentSpec {
        resources: "cpus:4;mem:1024;disk:2048;ports:[31000-31010]".into(),
        ..spec
    };
    let mut refused = grown.start(&dir.path().join("a3.log"));
    assert_eq!(refused.wait_exit(Duration::from_secs(10)), Some(1));
    let text = refused.log_text();
    assert!(
        text.contains("Failed to perform recovery: Incompatible agent info detected."),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "rm -f {}/meta/slaves/latest",
            grown.work_dir.display()
        )),
        "{text}"
    );

    // The additive policy accepts the growth and keeps the id.
    let additive = AgentSpec {
        extra: vec!["--reconfiguration_policy=additive".into()],
        ..grown
    };
    let mut agent = additive.start(&dir.path().join("a4.log"));
    assert_eq!(registered(additive.port, master.port).await, id);
    agent.kill();

    // Removing `latest` gives a new agent id; the old entry at the same address goes.
    std::fs::remove_file(additive.work_dir.join("meta/slaves/latest")).unwrap();
    let mut agent = additive.start(&dir.path().join("a5.log"));
    let new_id = registered(additive.port, master.port).await;
    assert_ne!(new_id, id);
    let ids: Vec<Value> = agents(master.port)
        .await
        .iter()
        .map(|a| a["agent_info"]["id"]["value"].clone())
        .collect();
    assert_eq!(ids, vec![json!(new_id)]);

    // Tasks are real processes; draining kills them and the agent reports DRAINED.
    let task = json!({"task_id": "t1", "name": "sleeper", "framework_id": "f1", "framework_name": "marathon",
                      "command": "sleep 7001", "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.0}}]});
    let r = post(
        &format!("http://127.0.0.1:{}/sim/tasks", additive.port),
        &task,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200);
    let too_big = json!({"task_id": "t2", "name": "big", "framework_id": "f1", "framework_name": "marathon",
                         "command": "true", "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 4.0}}]});
    assert_eq!(
        post(
            &format!("http://127.0.0.1:{}/sim/tasks", additive.port),
            &too_big
        )
        .await
        .unwrap()
        .status,
        409
    );
    let pid = agent_state(additive.port).await["frameworks"][0]["executors"][0]["tasks"][0]["pid"]
        .as_u64()
        .unwrap();
    assert!(process_alive(pid));
    eventually(
        Duration::from_secs(10),
        "the task on the master",
        || async {
            let m = metrics(master.port).await?;
            (m["master/tasks_running"] == json!(1.0)).then_some(())
        },
    )
    .await;
    let bad = json!({"type": "DRAIN_AGENT", "drain_agent": {"agent_id": {"value": new_id}, "max_grace_period": "10mins"}});
    assert_eq!(
        api(master.port, bad).await.status,
        400,
        "a Duration is an object, not \"10mins\""
    );
    let drain = json!({"type": "DRAIN_AGENT", "drain_agent": {"agent_id": {"value": new_id}, "max_grace_period": {"seconds": 1}}});
    assert_eq!(api(master.port, drain).await.status, 200);
    eventually(Duration::from_secs(15), "DRAINED", || async {
        let a = agents(master.port).await.into_iter().next()?;
        (a["drain_info"]["state"] == "DRAINED" && a["active"] == false).then_some(())
    })
    .await;
    assert!(!process_alive(pid), "drained task process {pid} still runs");
    assert_eq!(
        processes_with("sleep 7001"),
        0,
        "the drained task's command still runs"
    );
    let refused = post(
        &format!("http://127.0.0.1:{}/sim/tasks", additive.port),
        &json!({"task_id": "t3", "name": "x",
        "framework_id": "f1", "framework_name": "marathon", "command": "true", "resources": []}),
    )
    .await
    .unwrap();
    assert_eq!(refused.status, 409, "a draining agent accepts no tasks");
    let r = api(
        master.port,
        json!({"type": "REACTIVATE_AGENT", "reactivate_agent": {"agent_id": {"value": new_id}}}),
    )
    .await;
    assert_eq!(r.status, 200);

    // A killed agent takes its tasks with it.
    agent.kill();
    let mut agent = additive.start(&dir.path().join("a6.log"));
    registered(additive.port, master.port).await;
    let task = json!({"task_id": "t4", "name": "sleeper", "framework_id": "f1", "framework_name": "marathon",
                      "command": "sleep 7004", "resources": []});
    assert_eq!(
        post(
            &format!("http://127.0.0.1:{}/sim/tasks", additive.port),
            &task
        )
        .await
        .unwrap()
        .status,
        200
    );
    let pid = agent_state(additive.port).await["frameworks"][0]["executors"][0]["tasks"][0]["pid"]
        .as_u64()
        .unwrap();
    assert!(process_alive(pid));
    assert!(processes_with("sleep 7004") >= 1);
    agent.kill();
    eventually(
        Duration::from_secs(5),
        "the task to die with its agent",
        || async { (!process_alive(pid) && processes_with("sleep 7004") == 0).then_some(()) },
    )
    .await;

    // MARK_AGENT_GONE: 200, idempotent, 404 for unknown ids; a gone agent is shut down.
    let gone =
        json!({"type": "MARK_AGENT_GONE", "mark_agent_gone": {"agent_id": {"value": new_id}}});
    assert_eq!(api(master.port, gone.clone()).await.status, 200);
    assert_eq!(api(master.port, gone).await.status, 200);
    let unknown =
        json!({"type": "MARK_AGENT_GONE", "mark_agent_gone": {"agent_id": {"value": "nope"}}});
    let r = api(master.port, unknown).await;
    assert_eq!(
        (
            r.status.as_u16(),
            String::from_utf8_lossy(&r.body).to_string()
        ),
        (404, "Agent 'nope' not found".to_string())
    );
    let mut agent = additive.start(&dir.path().join("a7.log"));
    assert_eq!(
        agent.wait_exit(Duration::from_secs(15)),
        Some(0),
        "{}",
        agent.log_text()
    );
    assert!(agent.log_text().contains("Agent has been marked gone"));
}

#[test]
fn mount_disks_and_bad_flags_fail_start_up_like_mesos() {
    let dir = TestDir::new();
    let run = |args: &[String]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mesos-agent-sim"))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let base = |resources: &str| {
        vec![
            "--master=zk://127.0.0.1:1/mesos".to_string(),
            format!("--work_dir={}", dir.path().display()),
            format!("--resources={resources}"),
        ]
    };
    let mount = |root: &str| {
        format!(
            r#"[{{"name":"disk","type":"SCALAR","scalar":{{"value":1024}},"disk":{{"source":{{"type":"MOUNT","mount":{{"root":"{root}"}}}}}}}}]"#
        )
    };
    let (code, err) = run(&base(&mount("/does/not/exist")));
    assert_eq!(code, Some(1));
    assert!(
        err.contains("Failed to determine `realpath` for '/does/not/exist'"),
        "{err}"
    );
    let plain = dir.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let (code, err) = run(&base(&mount(&plain.display().to_string())));
    assert_eq!(code, Some(1));
    let real = std::fs::canonicalize(&plain).unwrap();
    assert!(
        err.contains(&format!(
            "Failed to find mount '{}' in /proc/mounts",
            real.display()
        )),
        "{err}"
    );
    let (code, err) = run(&[format!("--work_dir={}", dir.path().display())]);
    assert_eq!(code, Some(1));
    assert!(
        err.starts_with("Missing required option `--master`"),
        "{err}"
    );
    let mut args = base("cpus:1");
    args.push("--no-such_flag".into());
    let (code, err) = run(&args);
    assert_eq!(code, Some(1));
    assert!(
        err.starts_with("Failed to load unknown flag 'such_flag' via 'no-such_flag'"),
        "{err}"
    );
}
