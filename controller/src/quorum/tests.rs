//! Table-driven tests of each procedure and each refusal, and of the simulated step lists
//! pinned in `docs/quorum.md`.

use chrono::{DateTime, Duration, Utc};

use super::*;

const OBSERVED_3: &str = include_str!("../../testdata/observed-3-masters.yaml");
const DOC: &str = include_str!("../../../docs/quorum.md");

fn now() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH + Duration::days(20_000)
}

fn clock() -> Clock {
    Clock {
        now: now(),
        operation_timeout: Duration::minutes(30),
    }
}

fn desired(masters: (u32, u32), zookeeper: u32) -> Desired {
    Desired {
        masters: MastersTarget {
            replicas: masters.0,
            quorum: Some(masters.1),
            acknowledge_log_wipe: false,
            config_hash: "master-a".into(),
            recover_from: None,
        },
        zookeeper: ZooKeeperTarget {
            replicas: zookeeper,
            config_hash: "zk-a".into(),
            recover_from: None,
        },
        restart_requested_at: None,
    }
}

fn healthy(leader: bool) -> Health {
    Health::Serving {
        recovered: true,
        leader,
    }
}

fn master(ordinal: u32, quorum: u32, health: Health) -> Member<MasterFlags> {
    Member {
        name: format!("prod-master-{ordinal}"),
        ordinal,
        volume: true,
        pod: Some(Pod {
            config: MasterFlags { quorum },
            config_hash: "master-a".into(),
            restart_token: None,
            terminating: false,
            health,
        }),
    }
}

fn tombstone(ordinal: u32) -> Tombstone {
    Tombstone {
        name: format!("prod-master-{ordinal}"),
        ordinal,
    }
}

/// The example cluster with its masters replaced: (ordinal, quorum), master 1 leading.
fn with_masters(members: &[(u32, u32)]) -> Observed {
    let mut o: Observed = serde_yaml::from_str(OBSERVED_3).expect("testdata parses");
    o.masters.members = members
        .iter()
        .map(|&(ordinal, q)| master(ordinal, q, healthy(ordinal == 1)))
        .collect();
    o
}

fn operation(kind: OperationKind, role: Role, target: &Desired) -> Operation {
    Operation {
        role,
        kind,
        target: target.clone(),
        step: 0,
        started_at: now(),
        deadline: now() + Duration::minutes(30),
    }
}

fn restart(ordinal: u32, quorum: u32) -> Decision {
    Decision::RestartMember {
        role: Role::Master,
        name: format!("prod-master-{ordinal}"),
        config: MemberConfig::Master { quorum },
    }
}

fn create(ordinal: u32, quorum: u32) -> Decision {
    Decision::CreateMember {
        role: Role::Master,
        name: format!("prod-master-{ordinal}"),
        ordinal,
        config: MemberConfig::Master { quorum },
    }
}

fn remove(ordinal: u32) -> Decision {
    Decision::RemoveMember {
        role: Role::Master,
        name: format!("prod-master-{ordinal}"),
    }
}

fn wait_catch_up(ordinal: u32) -> Decision {
    Decision::Wait(WaitReason::CatchingUp {
        role: Role::Master,
        member: format!("prod-master-{ordinal}"),
    })
}

struct Case {
    name: &'static str,
    desired: Desired,
    observed: Observed,
    operation: Option<Operation>,
    /// Minutes after the operation started.
    minutes: i64,
    expect: Decision,
}

fn case(name: &'static str, desired: Desired, observed: Observed, expect: Decision) -> Case {
    Case {
        name,
        desired,
        observed,
        operation: None,
        minutes: 0,
        expect,
    }
}

impl Case {
    fn during(mut self, kind: OperationKind, target: &Desired) -> Case {
        self.operation = Some(operation(kind, Role::Master, target));
        self
    }

    fn at(mut self, minutes: i64) -> Case {
        self.minutes = minutes;
        self
    }
}

fn set(o: &mut Observed, ordinal: u32, f: impl FnOnce(&mut Member<MasterFlags>)) {
    let m = o.masters.members.iter_mut().find(|m| m.ordinal == ordinal);
    f(m.expect("member exists"));
}

fn health(o: &mut Observed, ordinal: u32, h: Health) {
    set(o, ordinal, |m| {
        if let Some(p) = &mut m.pod {
            p.health = h;
        }
    });
}

fn cases() -> Vec<Case> {
    let (d35, d32, d53) = (desired((5, 3), 3), desired((3, 2), 3), desired((5, 3), 3));
    let three = with_masters(&[(1, 2), (2, 2), (3, 2)]);
    let grow = OperationKind::Grow;
    let mut cases = vec![
        case(
            "done when everything matches",
            d32.clone(),
            three.clone(),
            Decision::Done,
        ),
        case(
            "grow 3->5 starts (and persists) an operation first",
            d35.clone(),
            three.clone(),
            Decision::UpdateOperation(OperationUpdate::Start(operation(grow, Role::Master, &d35))),
        ),
        case(
            "grow restarts a follower first with the raised quorum",
            d35.clone(),
            three.clone(),
            restart(2, 3),
        )
        .during(grow, &d35),
        case(
            "grow restarts the leader last",
            d35.clone(),
            with_masters(&[(1, 2), (2, 3), (3, 3)]),
            restart(1, 3),
        )
        .during(grow, &d35),
        case(
            "grow starts new masters only once every old one runs the new quorum",
            d35.clone(),
            with_masters(&[(1, 3), (2, 3), (3, 3)]),
            create(4, 3),
        )
        .during(grow, &d35),
        case(
            "the operation finishes when the target is reached",
            d35.clone(),
            with_masters(&[(1, 3), (2, 3), (3, 3), (4, 3), (5, 3)]),
            Decision::UpdateOperation(OperationUpdate::Finish),
        )
        .during(grow, &d35),
        case(
            "shrink 5->3 removes the newest follower first",
            d32.clone(),
            with_masters(&[(1, 3), (2, 3), (3, 3), (4, 3), (5, 3)]),
            remove(5),
        )
        .during(OperationKind::Shrink, &d32),
        case(
            "spec edited mid-operation: the latched target still drives",
            d32.clone(),
            three.clone(),
            restart(2, 3),
        )
        .during(grow, &d53),
        case(
            "deadline passed with the same spec: keeps going (reported by the caller)",
            d35.clone(),
            three.clone(),
            restart(2, 3),
        )
        .during(grow, &d35)
        .at(31),
        case(
            "deadline passed and spec edited: abandoned explicitly, never pivoted silently",
            d32.clone(),
            three.clone(),
            Decision::UpdateOperation(OperationUpdate::Abandon {
                kind: grow,
                role: Role::Master,
            }),
        )
        .during(grow, &d35)
        .at(31),
        case(
            "refuses an invalid quorum",
            desired((3, 1), 3),
            three.clone(),
            Decision::Blocked(BlockReason::InvalidTarget {
                role: Role::Master,
                replicas: 3,
                quorum: 1,
            }),
        ),
        case(
            "refuses 1->3 without the log-wipe acknowledgement",
            d32.clone(),
            with_masters(&[(1, 1)]),
            Decision::Blocked(BlockReason::LogWipeNotAcknowledged { from: 1, to: 3 }),
        ),
    ];

    let mut shrunk = with_masters(&[(1, 3), (2, 3), (3, 3)]);
    shrunk.masters.tombstones = vec![tombstone(4), tombstone(5)];
    // The leader was restarted last; until another is elected, nothing else moves.
    let mut mid_roll = with_masters(&[(1, 3), (2, 2), (3, 3)]);
    health(&mut mid_roll, 1, healthy(false));
    cases.push(
        case(
            "a grow waits for an elected leader before its next step",
            d35.clone(),
            mid_roll,
            Decision::Wait(WaitReason::NoLeader { role: Role::Master }),
        )
        .during(grow, &d35),
    );
    let mut leaderless = with_masters(&[(1, 2), (2, 2), (3, 2)]);
    health(&mut leaderless, 1, healthy(false));
    cases.push(
        case(
            "an operation finishes only once a leader is elected",
            d32.clone(),
            leaderless,
            Decision::Wait(WaitReason::NoLeader { role: Role::Master }),
        )
        .during(OperationKind::RollingRestart, &d32),
    );
    cases.push(
        case(
            "shrink lowers the quorum once only 3 remain",
            d32.clone(),
            shrunk,
            restart(2, 2),
        )
        .during(OperationKind::Shrink, &d32),
    );

    let mut ack = d32.clone();
    ack.masters.acknowledge_log_wipe = true;
    cases.push(
        case(
            "1->3 with the acknowledgement fences the standalone master (its log is discarded)",
            ack.clone(),
            with_masters(&[(1, 1)]),
            remove(1),
        )
        .during(grow, &ack),
    );
    let mut wiped = with_masters(&[]);
    wiped.masters.tombstones = vec![tombstone(1)];
    cases.push(
        case(
            "1->3: the grow ends once the standalone master is fenced",
            ack.clone(),
            wiped.clone(),
            Decision::UpdateOperation(OperationUpdate::Finish),
        )
        .during(grow, &ack),
    );
    cases.push(case(
        "1->3: then a fresh log is bootstrapped under its own operation",
        ack.clone(),
        wiped.clone(),
        Decision::UpdateOperation(OperationUpdate::Start(operation(
            OperationKind::Bootstrap,
            Role::Master,
            &ack,
        ))),
    ));
    cases.push(
        case(
            "1->3: bootstrap creates a master at the target quorum",
            ack.clone(),
            wiped.clone(),
            create(2, 2),
        )
        .during(OperationKind::Bootstrap, &ack),
    );
    cases.push(case(
        "every master lost without the acknowledgement: blocked, never silently re-initialised",
        d32.clone(),
        wiped,
        Decision::Blocked(BlockReason::AllDataLost { role: Role::Master }),
    ));

    let mut lost = three.clone();
    set(&mut lost, 3, |m| {
        m.volume = false;
        m.pod = None;
    });
    cases.push(
        case(
            "replace fences a master whose volume is gone",
            d32.clone(),
            lost,
            remove(3),
        )
        .during(OperationKind::Replace, &d32),
    );
    let mut replaced = with_masters(&[(1, 2), (2, 2)]);
    replaced.masters.tombstones = vec![tombstone(3)];
    cases.push(
        case(
            "replace creates a fresh identity past every tombstone, at the same quorum",
            d32.clone(),
            replaced.clone(),
            create(4, 2),
        )
        .during(OperationKind::Replace, &d32),
    );
    replaced.masters.members.push(master(
        4,
        2,
        Health::Serving {
            recovered: false,
            leader: false,
        },
    ));
    cases.push(
        case(
            "replace waits for the new master to catch up",
            d32.clone(),
            replaced,
            wait_catch_up(4),
        )
        .during(OperationKind::Replace, &d32),
    );

    let mut catching_up = with_masters(&[(1, 2), (2, 3), (3, 2)]);
    health(&mut catching_up, 2, Health::Starting);
    cases.push(
        case(
            "member not caught up: the next master is not touched",
            d35.clone(),
            catching_up,
            wait_catch_up(2),
        )
        .during(grow, &d35),
    );

    let mut split = three.clone();
    set(&mut split, 2, |m| m.pod = None);
    cases.push(
        case(
            "a pod gone between the two halves of a restart comes back at the raised quorum",
            d35.clone(),
            split,
            restart(2, 3),
        )
        .during(grow, &d35),
    );
    let mut stranded = three.clone();
    set(&mut stranded, 3, |m| {
        if let Some(p) = &mut m.pod {
            p.config.quorum = 3;
            p.health = Health::Serving {
                recovered: false,
                leader: false,
            };
        }
    });
    cases.push(
        case(
            "an empty master stranded at a quorum the others cannot give it is fenced and replaced",
            d35.clone(),
            stranded,
            remove(3),
        )
        .during(grow, &d35),
    );

    let mut unreachable = three.clone();
    health(&mut unreachable, 3, Health::Unknown);
    cases.push(
        case(
            "no quorum guarantee: an unreachable member is never counted as healthy",
            d35.clone(),
            unreachable,
            Decision::Wait(WaitReason::MemberUnknown {
                role: Role::Master,
                member: "prod-master-3".into(),
            }),
        )
        .during(grow, &d35),
    );

    let mut thin = with_masters(&[(1, 3), (2, 3), (3, 3), (4, 3), (5, 3)]);
    health(&mut thin, 5, Health::Starting);
    for ordinal in [3, 4] {
        health(&mut thin, ordinal, Health::Unknown);
        set(&mut thin, ordinal, |m| {
            if let Some(p) = &mut m.pod {
                p.config_hash = "master-old".into();
            }
        });
    }
    cases.push(
        case(
            "no quorum: a down master is not removed while too few healthy ones remain",
            d32.clone(),
            thin,
            Decision::Wait(WaitReason::QuorumUnavailable {
                role: Role::Master,
                healthy: 2,
                needed: 3,
            }),
        )
        .during(OperationKind::Shrink, &d32),
    );

    let mut fenced = three.clone();
    fenced.masters.tombstones = vec![tombstone(3)];
    set(&mut fenced, 3, |m| {
        if let Some(p) = &mut m.pod {
            p.terminating = true;
        }
    });
    cases.push(case(
        "a fenced master's pod still terminating holds every step",
        d32.clone(),
        fenced,
        Decision::Wait(WaitReason::FencedMemberStillRunning {
            role: Role::Master,
            member: "prod-master-3".into(),
        }),
    ));

    let mut new_config = d32.clone();
    new_config.masters.config_hash = "master-b".into();
    let roll = OperationKind::RollingRestart;
    cases.push(
        case(
            "a config change rolls the followers first",
            new_config.clone(),
            three.clone(),
            restart(2, 2),
        )
        .during(roll, &new_config),
    );
    let mut unready = three.clone();
    health(&mut unready, 3, Health::Starting);
    cases.push(
        case(
            "a rolling restart takes an unready member first",
            new_config.clone(),
            unready,
            restart(3, 2),
        )
        .during(roll, &new_config),
    );
    let mut stuck = three.clone();
    set(&mut stuck, 2, |m| {
        if let Some(p) = &mut m.pod {
            p.config_hash = "master-b".into();
            p.health = Health::Starting;
        }
    });
    cases.push(
        case(
            "a rolling restart stops at the first member that does not come back",
            new_config.clone(),
            stuck,
            wait_catch_up(2),
        )
        .during(roll, &new_config),
    );
    let mut requested = d32.clone();
    requested.restart_requested_at = Some("2026-11-23T09:00:00Z".into());
    cases.push(case(
        "restartRequestedAt starts a rolling restart, ZooKeeper first (the masters depend on it)",
        requested.clone(),
        three.clone(),
        Decision::UpdateOperation(OperationUpdate::Start(operation(
            roll,
            Role::ZooKeeper,
            &requested,
        ))),
    ));
    cases
}

#[test]
fn quorum_planner_procedures_and_refusals() {
    for c in cases() {
        let clock = Clock {
            now: now() + Duration::minutes(c.minutes),
            ..clock()
        };
        let got = plan(&c.desired, &c.observed, c.operation.as_ref(), clock);
        assert_eq!(got, c.expect, "{}", c.name);
        let sentence = got.to_string();
        assert!(
            sentence.ends_with('.') && !sentence.contains('\n'),
            "{}: not one sentence: {sentence}",
            c.name
        );
    }
}

fn zookeeper_step(servers: u32, lists: &[&[u32]], leader: u32) -> Decision {
    let mut o = with_masters(&[(1, 2), (2, 2), (3, 2)]);
    let name = |n: &u32| format!("prod-zookeeper-{n}");
    o.zookeeper.members = lists
        .iter()
        .enumerate()
        .map(|(i, list)| {
            let ordinal = u32::try_from(i).unwrap_or(0) + 1;
            Member {
                name: name(&ordinal),
                ordinal,
                volume: true,
                pod: Some(Pod {
                    config: ServerList {
                        servers: list.iter().map(name).collect(),
                    },
                    config_hash: "zk-a".into(),
                    restart_token: None,
                    terminating: false,
                    health: healthy(ordinal == leader),
                }),
            }
        })
        .collect();
    let d = desired((3, 2), servers);
    let op = operation(OperationKind::Grow, Role::ZooKeeper, &d);
    plan(&d, &o, Some(&op), clock())
}

#[test]
fn quorum_zookeeper_changes_one_server_at_a_time() {
    let zk = |n: &[u32]| MemberConfig::ZooKeeper {
        servers: n.iter().map(|n| format!("prod-zookeeper-{n}")).collect(),
    };
    let full: &[u32] = &[1, 2, 3];
    assert_eq!(
        zookeeper_step(5, &[full, full, full], 1),
        Decision::CreateMember {
            role: Role::ZooKeeper,
            name: "prod-zookeeper-4".into(),
            ordinal: 4,
            config: zk(&[1, 2, 3, 4]),
        },
        "a new server starts with the current list plus itself"
    );
    let four: &[u32] = &[1, 2, 3, 4];
    assert_eq!(
        zookeeper_step(5, &[full, full, full, four], 2),
        Decision::RestartMember {
            role: Role::ZooKeeper,
            name: "prod-zookeeper-1".into(),
            config: zk(four),
        },
        "then the list is rolled out, followers first"
    );
    assert_eq!(
        zookeeper_step(5, &[four, full, four, four], 2),
        Decision::RestartMember {
            role: Role::ZooKeeper,
            name: "prod-zookeeper-2".into(),
            config: zk(four),
        },
        "the leader last"
    );
    assert_eq!(
        zookeeper_step(3, &[four, four, four, four], 1),
        Decision::RemoveMember {
            role: Role::ZooKeeper,
            name: "prod-zookeeper-4".into(),
        },
        "shrinking fences the newest follower first"
    );
}

#[test]
fn quorum_invariants_count_what_could_run() {
    let mut o = with_masters(&[(1, 2), (2, 2), (3, 2)]);
    assert!(invariants::masters_within_bound(&o.masters).is_ok());
    o.masters.members.push(master(4, 3, Health::Starting));
    assert!(
        invariants::masters_within_bound(&o.masters).is_err(),
        "a fourth master next to quorum 2"
    );
    o.masters.members[3].pod = None;
    assert!(
        invariants::masters_within_bound(&o.masters).is_err(),
        "an unfenced member without a pod can still be started"
    );
    o.masters.tombstones.push(tombstone(4));
    assert!(
        invariants::masters_within_bound(&o.masters).is_ok(),
        "fenced and gone"
    );
    let odd = with_masters(&[(1, 0), (2, 2), (3, 2)]);
    assert!(
        invariants::masters_within_bound(&odd.masters).is_err(),
        "a pod claiming --quorum=0 is reported, not a panic"
    );
    let mut zero = desired((3, 2), 3);
    zero.masters.quorum = Some(0);
    let op = operation(OperationKind::Grow, Role::Master, &zero);
    assert!(matches!(
        plan(&desired((3, 2), 3), &odd, Some(&op), clock()),
        Decision::Blocked(BlockReason::InvalidTarget { .. })
    ));
    assert!(matches!(
        plan(&desired((5, 3), 3), &odd, None, clock()),
        Decision::UpdateOperation(_)
    ));
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(invariants::majorities_intersect(
        &names(&["a", "b", "c"]),
        &names(&["a", "b", "c", "d"])
    ));
    assert!(!invariants::majorities_intersect(
        &names(&["a", "b", "c"]),
        &names(&["b", "c", "d"])
    ));
    assert!(!invariants::majorities_intersect(
        &names(&["a", "b", "c"]),
        &names(&["a", "b", "c", "d", "e"])
    ));
}

#[test]
fn quorum_observed_yaml_round_trips() {
    let o: Observed = serde_yaml::from_str(OBSERVED_3).expect("testdata parses");
    assert_eq!(o.masters.members.len(), 3);
    assert_eq!(o.zookeeper.members.len(), 3);
    let again: Observed =
        serde_yaml::from_str(&serde_yaml::to_string(&o).expect("serialises")).expect("parses back");
    assert_eq!(again, o);
}

/// The step lists shown in docs/quorum.md, each generated by `simulate`.
fn documented_changes() -> Vec<(&'static str, Desired, Observed)> {
    let three = with_masters(&[(1, 2), (2, 2), (3, 2)]);
    let five = with_masters(&[(1, 3), (2, 3), (3, 3), (4, 3), (5, 3)]);
    let mut lost = three.clone();
    set(&mut lost, 2, |m| {
        m.volume = false;
        m.pod = None;
    });
    let mut ack = desired((3, 2), 3);
    ack.masters.acknowledge_log_wipe = true;
    let mut zk5 = desired((3, 2), 5);
    zk5.masters.config_hash = "master-a".into();
    vec![
        ("grow-3-5", desired((5, 3), 3), three.clone()),
        ("shrink-5-3", desired((3, 2), 3), five),
        ("grow-3-7", desired((7, 4), 3), three.clone()),
        ("replace", desired((3, 2), 3), lost),
        (
            "grow-1-3-refused",
            desired((3, 2), 3),
            with_masters(&[(1, 1)]),
        ),
        ("grow-1-3", ack, with_masters(&[(1, 1)])),
        ("zookeeper-3-5", zk5, three),
    ]
}

/// The text block following `<!-- simulate: NAME -->` in the doc.
fn doc_block(name: &str) -> Option<String> {
    let marker = format!("<!-- simulate: {name} -->");
    let rest = &DOC[DOC.find(&marker)? + marker.len()..];
    let body = &rest[rest.find("```text\n")? + "```text\n".len()..];
    Some(body[..body.find("```")?].to_string())
}

#[test]
fn quorum_documented_step_lists_match_simulate() {
    for (name, desired, observed) in documented_changes() {
        let steps = simulate(&desired, &observed, None, clock()).expect("simulation ends");
        let rendered = render(&steps);
        let last = steps.last().expect("at least one step");
        if name.ends_with("refused") {
            assert!(matches!(last, Decision::Blocked(_)), "{name}: {last}");
        } else {
            assert_eq!(last, &Decision::Done, "{name}");
        }
        assert_eq!(
            doc_block(name).as_deref(),
            Some(rendered.as_str()),
            "docs/quorum.md is out of date for {name}; it should read:\n{rendered}"
        );
    }
}

#[test]
fn quorum_simulated_grow_restarts_before_it_creates() {
    let three = with_masters(&[(1, 2), (2, 2), (3, 2)]);
    let steps = simulate(&desired((5, 3), 3), &three, None, clock()).expect("simulation ends");
    let actions: Vec<&Decision> = steps
        .iter()
        .filter(|d| {
            matches!(
                d,
                Decision::RestartMember { .. } | Decision::CreateMember { .. }
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            &restart(2, 3),
            &restart(3, 3),
            &restart(1, 3),
            &create(4, 3),
            &create(5, 3)
        ]
    );
}

#[test]
fn quorum_health_reports_fault_tolerance() {
    let mut o = with_masters(&[(1, 2), (2, 2), (3, 2)]);
    assert_eq!(masters_health(&o.masters).fault_tolerance(), Some(1));
    set(&mut o, 1, |m| {
        if let Some(p) = &mut m.pod {
            p.config.quorum = 3;
        }
    });
    assert_eq!(
        masters_health(&o.masters).fault_tolerance(),
        Some(0),
        "3 masters of which one runs --quorum=3: the zero fault tolerance window"
    );
    health(&mut o, 2, Health::Unknown);
    let h = masters_health(&o.masters);
    assert!(!h.quorate(), "an unreachable master is not counted");
    assert_eq!(h.fault_tolerance(), None);
    assert_eq!(zookeeper_health(&o.zookeeper).fault_tolerance(), Some(1));
    assert_eq!(min_available(3, 5), 3);
    assert_eq!(min_available(5, 3), 3);
    assert_eq!(min_available(7, 3), 4);
}

#[test]
fn quorum_operation_is_stored_in_status_as_camel_case() {
    let d = desired((5, 3), 3);
    let op = operation(OperationKind::Grow, Role::Master, &d);
    let json = serde_json::to_value(&op).expect("serialises");
    assert_eq!(json["kind"], "Grow");
    assert_eq!(json["target"]["masters"]["replicas"], 5);
    assert!(json["startedAt"].is_string() && json["deadline"].is_string());
    let back: Operation = serde_json::from_value(json).expect("reloads");
    assert_eq!(
        back, op,
        "an operator restart reloads exactly what it persisted"
    );
    let schema = serde_json::to_value(schemars::schema_for!(Operation)).expect("schema");
    assert_eq!(schema["properties"]["startedAt"]["type"], "string");
    let tombstone = serde_json::to_value(schemars::schema_for!(Tombstone)).expect("schema");
    assert!(
        tombstone["required"]
            .as_array()
            .is_some_and(|r| r.len() == 2)
    );
}

mod majority;
