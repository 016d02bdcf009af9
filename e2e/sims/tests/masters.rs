//! mesos-master-sim against a real 3-node ZooKeeper ensemble.

mod common;

use std::time::{Duration, Instant};

use common::*;
use mesos_sims::zk::Zk;
use mesos_sims::zk_ensemble::ZkEnsemble;
use mesos_sims::zk_url::ZkUrl;
use serde_json::json;

const SESSION: Duration = Duration::from_secs(2);

fn cluster(
    zk: &ZkEnsemble,
    path: &str,
    dir: &std::path::Path,
    quorum: usize,
    n: usize,
) -> Vec<MasterSpec> {
    (0..n)
        .map(|i| MasterSpec {
            zk: format!("zk://{}{path}", zk.connect_string()),
            port: free_port(),
            quorum,
            work_dir: dir.join(format!("{}-m{i}", path.trim_start_matches('/'))),
            extra: Vec::new(),
        })
        .collect()
}

fn violations_file(spec: &MasterSpec) -> String {
    std::fs::read_to_string(spec.work_dir.join("VIOLATIONS")).unwrap_or_default()
}

async fn assert_no_violations<'a>(masters: impl IntoIterator<Item = (&'a MasterSpec, &'a u16)>) {
    for (s, &p) in masters {
        assert_eq!(
            metric(p, "sim/safety_violations").await,
            Some(0.0),
            "{}",
            violations_file(s)
        );
        assert_eq!(violations_file(s), "");
    }
}

/// Waits until `spec`'s master counted a violation and wrote one containing `text`.
async fn await_violation(spec: &MasterSpec, text: &str) {
    eventually(
        Duration::from_secs(15),
        &format!("violation '{text}' on {}", spec.port),
        || async {
            let counted = metric(spec.port, "sim/safety_violations").await? >= 1.0;
            (counted && violations_file(spec).contains(text)).then_some(())
        },
    )
    .await;
}

/// Waits until the roster in `port`'s log has `n` entries under `key` (`members`/`fenced`).
async fn await_roster(port: u16, key: &str, n: usize) {
    eventually(
        Duration::from_secs(10),
        &format!("{n} roster {key} on {port}"),
        || async {
            let r = get(&format!("http://127.0.0.1:{port}/sim/log/roster"))
                .await?
                .json()?;
            let len = r[key]
                .as_object()
                .map(|o| o.len())
                .or_else(|| r[key].as_array().map(Vec::len))?;
            (len == n).then_some(())
        },
    )
    .await;
}

/// The documented way to change the quorum: restart `specs` one at a time with
/// `--quorum=q`, each time waiting until it caught up and a leader serves.
async fn change_quorum(specs: &mut [MasterSpec], procs: &mut [Proc], q: usize) {
    let ports: Vec<u16> = specs.iter().map(|s| s.port).collect();
    for (spec, proc) in specs.iter_mut().zip(procs.iter_mut()) {
        proc.kill();
        spec.quorum = q;
        *proc = spec.start();
        all_recovered(&[spec.port], Duration::from_secs(15)).await;
        serving_leader(&ports, Duration::from_secs(30)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_masters_elect_one_leader_and_fail_over() {
    let _serial = SERIAL.lock().await;
    let dir = TestDir::new();
    let zk = ZkEnsemble::start(3, dir.path(), 500).unwrap();
    let specs = cluster(&zk, "/mesos", dir.path(), 2, 3);
    let mut procs: Vec<Proc> = specs.iter().map(MasterSpec::start).collect();
    let ports: Vec<u16> = specs.iter().map(|s| s.port).collect();

    let leader = serving_leader(&ports, Duration::from_secs(40)).await;
    all_recovered(&ports, Duration::from_secs(10)).await;

    // ZooKeeper holds one json.info_ contender per master; the oldest is the leader.
    let client = Zk::connect(
        &ZkUrl::parse(&specs[0].zk).unwrap(),
        SESSION,
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let contenders = client.members("/mesos", "json.info_").await.unwrap();
    assert_eq!(contenders.len(), 3);
    let info: serde_json::Value = serde_json::from_slice(&contenders[0].data).unwrap();
    assert_eq!(info["address"]["port"], json!(leader));
    assert_eq!(info["pid"], json!(format!("master@127.0.0.1:{leader}")));
    assert_eq!(
        client
            .members("/mesos/log_replicas", "")
            .await
            .unwrap()
            .len(),
        3
    );

    for &p in &ports {
        let r = get(&format!("http://127.0.0.1:{p}/redirect"))
            .await
            .unwrap();
        assert_eq!(r.status, 307);
        assert_eq!(
            r.location.as_deref(),
            Some(format!("//127.0.0.1:{leader}").as_str())
        );
        let r = get(&format!("http://127.0.0.1:{p}/master/state?x=1"))
            .await
            .unwrap();
        if p == leader {
            assert_eq!(r.status, 200);
            assert_eq!(r.json().unwrap()["leader_info"]["port"], json!(leader));
        } else {
            assert_eq!(r.status, 307);
            assert_eq!(
                r.location.as_deref(),
                Some(format!("//127.0.0.1:{leader}/master/state?x=1").as_str())
            );
        }
        assert_eq!(metric(p, "registrar/log/ensemble_size").await, Some(3.0));
    }
    assert_eq!(
        get(&format!("http://127.0.0.1:{leader}/redirect/x"))
            .await
            .unwrap()
            .status,
        404
    );

    // An agent registered with this leader is in the replicated registry.
    let agent_port = free_port();
    let agent_args = vec![
        format!("--master={}", specs[0].zk),
        format!("--work_dir={}", dir.path().join("agent").display()),
        "--ip=127.0.0.1".to_string(),
        format!("--port={agent_port}"),
        "--resources=cpus:1;mem:256".to_string(),
    ];
    let _agent = Proc::spawn(
        env!("CARGO_BIN_EXE_mesos-agent-sim"),
        &agent_args,
        &dir.path().join("agent.log"),
    );
    let agent_id = eventually(Duration::from_secs(15), "the agent to register", || async {
        let s = get(&format!("http://127.0.0.1:{agent_port}/state"))
            .await?
            .json()?;
        s["id"]
            .as_str()
            .filter(|id| !id.is_empty())
            .map(str::to_string)
    })
    .await;

    // Kill the leader: another one is elected once its session expires.
    let index = ports.iter().position(|&p| p == leader).unwrap();
    let killed = Instant::now();
    procs[index].kill();
    let rest: Vec<u16> = ports.iter().copied().filter(|&p| p != leader).collect();
    let next = eventually(Duration::from_secs(15), "a new leader", || async {
        let e = elected(&rest).await;
        (e.len() == 1).then(|| e[0])
    })
    .await;
    let took = killed.elapsed();
    assert!(
        took < SESSION + Duration::from_secs(3),
        "failover took {took:?}"
    );
    assert_eq!(serving_leader(&rest, Duration::from_secs(20)).await, next);
    let r = get(&format!("http://127.0.0.1:{}/redirect", rest[0]))
        .await
        .unwrap();
    assert_eq!(
        r.location.as_deref(),
        Some(format!("//127.0.0.1:{next}").as_str())
    );
    // The new leader recovered the agent from the log and the agent re-registered with it.
    eventually(
        Duration::from_secs(15),
        "the agent to re-register with the new leader",
        || async {
            let r = post(
                &format!("http://127.0.0.1:{next}/api/v1"),
                &json!({"type": "GET_AGENTS"}),
            )
            .await?;
            let agents = r.json()?["get_agents"]["agents"].as_array()?.clone();
            (agents.len() == 1
                && agents[0]["agent_info"]["id"]["value"] == agent_id.as_str()
                && agents[0]["active"] == true)
                .then_some(())
        },
    )
    .await;
    assert_no_violations(specs.iter().zip(&ports).filter(|(_, p)| **p != leader)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fourth_master_is_a_violation_and_the_grow_procedure_is_not() {
    let _serial = SERIAL.lock().await;
    let dir = TestDir::new();
    let zk = ZkEnsemble::start(3, dir.path(), 500).unwrap();

    // N = 4 > 2q-1 = 3.
    let specs = cluster(&zk, "/four", dir.path(), 2, 4);
    let ports: Vec<u16> = specs.iter().map(|s| s.port).collect();
    let _procs: Vec<Proc> = specs[..3].iter().map(MasterSpec::start).collect();
    serving_leader(&ports[..3], Duration::from_secs(40)).await;
    assert_no_violations(specs.iter().zip(&ports).take(3)).await;
    let _fourth = specs[3].start();
    for spec in &specs {
        await_violation(spec, "4 log replicas exceed 2*quorum-1 = 3").await;
    }

    // Grow 3 -> 5 as documented: restart the three with --quorum=3 one by one, then add two.
    let mut specs = cluster(&zk, "/grow", dir.path(), 2, 5);
    let ports: Vec<u16> = specs.iter().map(|s| s.port).collect();
    let mut procs: Vec<Proc> = specs[..3].iter().map(MasterSpec::start).collect();
    serving_leader(&ports[..3], Duration::from_secs(40)).await;
    all_recovered(&ports[..3], Duration::from_secs(10)).await;
    change_quorum(&mut specs[..3], &mut procs[..3], 3).await;
    for spec in specs.iter_mut().skip(3) {
        spec.quorum = 3;
        procs.push(spec.start());
    }
    all_recovered(&ports, Duration::from_secs(20)).await;
    let leader = serving_leader(&ports, Duration::from_secs(30)).await;
    assert_eq!(
        metric(leader, "registrar/log/ensemble_size").await,
        Some(5.0)
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_no_violations(specs.iter().zip(&ports)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wiped_replica_catches_up_only_from_a_quorum() {
    let _serial = SERIAL.lock().await;
    let dir = TestDir::new();
    let zk = ZkEnsemble::start(3, dir.path(), 500).unwrap();
    let specs = cluster(&zk, "/wipe", dir.path(), 2, 3);
    let ports: Vec<u16> = specs.iter().map(|s| s.port).collect();
    let mut procs: Vec<Proc> = specs.iter().map(MasterSpec::start).collect();
    serving_leader(&ports, Duration::from_secs(40)).await;
    all_recovered(&ports, Duration::from_secs(10)).await;

    // The leader records the replica roster once it has seen every replica.
    await_roster(ports[0], "members", 3).await;

    // Stop masters 1 and 2, wipe 2's work_dir and start it again: with one VOTING
    // replica alive (< quorum) it must stay unrecovered.
    procs[1].kill();
    procs[2].kill();
    let old_log = dir.path().join("old-m2");
    assert!(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(&specs[2].work_dir)
            .arg(&old_log)
            .status()
            .unwrap()
            .success()
    );
    std::fs::remove_dir_all(&specs[2].work_dir).unwrap();
    procs[2] = specs[2].start();
    let status = eventually(Duration::from_secs(10), "wiped replica status", || async {
        get(&format!("http://127.0.0.1:{}/sim/log/status", ports[2]))
            .await?
            .json()
    })
    .await;
    assert_eq!(status["status"], "EMPTY");
    for _ in 0..10 {
        assert_eq!(metric(ports[2], "registrar/log/recovered").await, Some(0.0));
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    procs[1] = specs[1].start();
    all_recovered(&ports[2..], Duration::from_secs(15)).await;
    serving_leader(&ports, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_no_violations(specs.iter().zip(&ports)).await;

    // The wiped replica replaced the old one, which is now fenced: bringing the old
    // log back (in place of the new replica, so N stays 3) is a violation.
    for &p in &ports[..2] {
        await_roster(p, "fenced", 1).await;
    }
    procs[2].kill();
    let revenant = MasterSpec {
        work_dir: old_log,
        port: free_port(),
        ..cluster(&zk, "/wipe", dir.path(), 2, 1).remove(0)
    };
    let _revenant = revenant.start();
    for spec in &specs[..2] {
        await_violation(spec, "with an old log").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_without_a_log_quorum_gives_up_after_the_fetch_timeout() {
    let _serial = SERIAL.lock().await;
    let dir = TestDir::new();
    let zk = ZkEnsemble::start(1, dir.path(), 500).unwrap();
    let mut spec = cluster(&zk, "/lonely", dir.path(), 2, 1).remove(0);
    spec.extra = vec!["--registry_fetch_timeout=3secs".into()];
    let mut master = spec.start();
    let code = master.wait_exit(Duration::from_secs(20));
    assert_eq!(code, Some(1), "{}", master.log_text());
    assert!(
        master.log_text().contains(
            "Recovery failed: Failed to recover registrar: Failed to perform fetch within 3secs"
        ),
        "{}",
        master.log_text()
    );
}

#[test]
fn bad_flags_exit_non_zero_with_mesos_messages() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mesos-master-sim"))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = run(&["--work_dir=/tmp/x", "--frobnicate=1"]);
    assert_eq!(code, Some(1));
    assert!(
        err.starts_with("Failed to load unknown flag 'frobnicate'"),
        "{err}"
    );
    let (code, err) = run(&["--zk=zk://127.0.0.1:1/mesos", "--work_dir=/tmp/x"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains(
            "Need to specify --quorum for replicated log based registry when using ZooKeeper"
        ),
        "{err}"
    );
    let (code, err) = run(&["--zk=zk://127.0.0.1:1/mesos", "--quorum=2"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("--work_dir needed for replicated log based registry"),
        "{err}"
    );
    let (code, err) = run(&["--work_dir=/tmp/x", "--port=http"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("Failed to load flag 'port': Failed to convert 'http' to number"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_write_without_quorum_aborts_the_leader() {
    let _serial = SERIAL.lock().await;
    let dir = TestDir::new();
    let zk = ZkEnsemble::start(1, dir.path(), 500).unwrap();
    let mut specs = cluster(&zk, "/store", dir.path(), 2, 3);
    for s in &mut specs {
        s.extra = vec!["--registry_store_timeout=3secs".into()];
    }
    let ports: Vec<u16> = specs.iter().map(|s| s.port).collect();
    let mut procs: Vec<Proc> = specs.iter().map(MasterSpec::start).collect();
    let leader = serving_leader(&ports, Duration::from_secs(40)).await;
    let index = ports.iter().position(|&p| p == leader).unwrap();
    for (i, p) in procs.iter_mut().enumerate() {
        if i != index {
            p.kill();
        }
    }
    // An agent registration is a registry write: with one of three replicas left it
    // cannot reach the quorum of 2, and the registrar aborts after the store timeout.
    let agent_port = free_port();
    let args = vec![
        format!("--master={}", specs[0].zk),
        format!("--work_dir={}", dir.path().join("agent").display()),
        "--ip=127.0.0.1".to_string(),
        format!("--port={agent_port}"),
    ];
    let _agent = Proc::spawn(
        env!("CARGO_BIN_EXE_mesos-agent-sim"),
        &args,
        &dir.path().join("agent.log"),
    );
    let code = procs[index].wait_exit(Duration::from_secs(20));
    let log = procs[index].log_text();
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains(
            "Registrar aborting: Failed to update registry: Failed to perform store within 3secs"
        ),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_cut_off_from_zookeeper_exits_after_the_session_timeout() {
    let _serial = SERIAL.lock().await;
    let dir = TestDir::new();
    let mut zk = ZkEnsemble::start(1, dir.path(), 500).unwrap();
    let spec = cluster(&zk, "/cutoff", dir.path(), 1, 1).remove(0);
    let mut master = spec.start();
    serving_leader(&[spec.port], Duration::from_secs(30)).await;
    zk.kill_server(1).unwrap();
    let code = master.wait_exit(SESSION + Duration::from_secs(5));
    assert_eq!(code, Some(1), "{}", master.log_text());
    assert!(
        master
            .log_text()
            .contains("Lost candidacy: ZooKeeper session lost"),
        "{}",
        master.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shrink_procedure_is_safe_and_a_removed_master_may_not_return() {
    let _serial = SERIAL.lock().await;
    let dir = TestDir::new();
    let zk = ZkEnsemble::start(1, dir.path(), 500).unwrap();
    let mut specs = cluster(&zk, "/shrink", dir.path(), 3, 5);
    let ports: Vec<u16> = specs.iter().map(|s| s.port).collect();
    let mut procs: Vec<Proc> = specs.iter().map(MasterSpec::start).collect();
    serving_leader(&ports, Duration::from_secs(40)).await;
    all_recovered(&ports, Duration::from_secs(20)).await;
    await_roster(ports[0], "members", 5).await;

    // Shrink 5 -> 3 as documented: remove two for good, then lower the quorum one by one.
    procs[3].kill();
    procs[4].kill();
    change_quorum(&mut specs[..3], &mut procs[..3], 2).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_no_violations(specs.iter().zip(&ports).take(3)).await;
    await_roster(ports[0], "fenced", 2).await;

    // A removed master coming back (even with the new quorum) is caught twice over:
    // four replicas exceed 2q-1 = 3, and its replica was fenced.
    specs[3].quorum = 2;
    let _back = specs[3].start();
    for spec in &specs[..3] {
        await_violation(spec, "with an old log").await;
        await_violation(spec, "4 log replicas exceed 2*quorum-1 = 3").await;
    }
}
