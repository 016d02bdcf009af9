//! A loss of a quorum's data is never repaired silently: one lost member is replaced, a lost
//! majority blocks until `recoverFrom` names this very loss, and the recovery rebuilds from the
//! survivors.

use super::*;

fn zk_name(n: u32) -> String {
    format!("prod-zookeeper-{n}")
}

/// The example cluster; ZooKeeper servers in `lost` lost their data claim (pods kept).
fn zk_lost(lost: &[u32]) -> Observed {
    let mut o: Observed = serde_yaml::from_str(OBSERVED_3).expect("testdata parses");
    for m in &mut o.zookeeper.members {
        m.volume = !lost.contains(&m.ordinal);
    }
    o
}

fn masters_lost(lost: &[u32]) -> Observed {
    let mut o = with_masters(&[(1, 2), (2, 2), (3, 2)]);
    for m in &mut o.masters.members {
        m.volume = !lost.contains(&m.ordinal);
    }
    o
}

fn ack(member: String, lost: Vec<String>) -> Option<Box<RecoverFrom>> {
    Some(Box::new(RecoverFrom { member, lost }))
}

fn blocked(role: Role, lost: Vec<String>, survivors: Vec<String>) -> Decision {
    Decision::Blocked(BlockReason::QuorumDataLost {
        role,
        lost,
        survivors,
    })
}

fn zk_op(d: &Desired) -> Operation {
    operation(OperationKind::Replace, Role::ZooKeeper, d)
}

#[test]
fn quorum_one_lost_member_is_still_replaced() {
    let d = desired((3, 2), 3);
    let got = plan(&d, &zk_lost(&[1]), Some(&zk_op(&d)), clock());
    assert_eq!(
        got,
        Decision::RemoveMember {
            role: Role::ZooKeeper,
            name: zk_name(1)
        }
    );
    let m = operation(OperationKind::Replace, Role::Master, &d);
    assert_eq!(plan(&d, &masters_lost(&[2]), Some(&m), clock()), remove(2));
}

#[test]
fn quorum_majority_loss_blocks_and_touches_nothing() {
    let d = desired((3, 2), 3);
    let want = blocked(
        Role::ZooKeeper,
        vec![zk_name(1), zk_name(2)],
        vec![zk_name(3)],
    );
    // With no operation, and with one latched before the second loss.
    assert_eq!(plan(&d, &zk_lost(&[1, 2]), None, clock()), want);
    assert_eq!(plan(&d, &zk_lost(&[1, 2]), Some(&zk_op(&d)), clock()), want);
    let sentence = want.to_string();
    assert!(
        sentence.contains("spec.zookeeper.recoverFrom")
            && sentence.contains("prod-zookeeper-1, prod-zookeeper-2"),
        "{sentence}"
    );
    // Masters: two of three logs lost.
    let master = |n: u32| format!("prod-master-{n}");
    assert_eq!(
        plan(&d, &masters_lost(&[1, 3]), None, clock()),
        blocked(Role::Master, vec![master(1), master(3)], vec![master(2)])
    );
    // Every log lost without acknowledgeLogWipe: still nothing is touched.
    let total = plan(&d, &masters_lost(&[1, 2, 3]), None, clock());
    assert_eq!(
        total,
        blocked(
            Role::Master,
            vec![master(1), master(2), master(3)],
            Vec::new()
        )
    );
    assert!(total.to_string().contains("acknowledgeLogWipe"), "{total}");
}

#[test]
fn quorum_majority_loss_survives_a_passed_deadline_and_a_spec_edit() {
    // The deadline passes and the spec changes: the operation is abandoned, and the new spec
    // is refused the same way; never a forced repair.
    let d = desired((3, 2), 3);
    let op = zk_op(&d);
    let late = Clock {
        now: now() + Duration::minutes(31),
        ..clock()
    };
    let edited = desired((5, 3), 3);
    let got = plan(&edited, &zk_lost(&[1, 2]), Some(&op), late);
    assert!(
        matches!(
            got,
            Decision::UpdateOperation(OperationUpdate::Abandon { .. })
        ),
        "{got:?}"
    );
    let after = plan(&edited, &zk_lost(&[1, 2]), None, late);
    assert!(
        matches!(after, Decision::Blocked(BlockReason::QuorumDataLost { .. })),
        "{after:?}"
    );
}

#[test]
fn quorum_recover_from_must_name_this_loss() {
    let mut d = desired((3, 2), 3);
    let o = zk_lost(&[1, 2]);
    let lost = vec![zk_name(1), zk_name(2)];
    // A lost member as the source, a partial or a stale list: still blocked.
    for wrong in [
        ack(zk_name(1), lost.clone()),
        ack(zk_name(3), vec![zk_name(1)]),
        ack(zk_name(3), vec![zk_name(1), zk_name(2), zk_name(4)]),
        ack(zk_name(3), vec![zk_name(7), zk_name(8)]),
    ] {
        d.zookeeper.recover_from = wrong.clone();
        let got = plan(&d, &o, Some(&zk_op(&d)), clock());
        assert!(
            matches!(got, Decision::Blocked(_)),
            "{wrong:?} acknowledged: {got:?}"
        );
    }
    // The right one fences the lost members, one at a time, from the live spec even though
    // the operation latched a target without it.
    let latched = zk_op(&desired((3, 2), 3));
    d.zookeeper.recover_from = ack(zk_name(3), lost.clone());
    let remove = |n| Decision::RemoveMember {
        role: Role::ZooKeeper,
        name: zk_name(n),
    };
    assert_eq!(plan(&d, &o, Some(&latched), clock()), remove(1));
    let mut half = o.clone();
    half.zookeeper.tombstones.push(Tombstone {
        name: zk_name(1),
        ordinal: 1,
    });
    half.zookeeper.members.retain(|m| m.ordinal != 1);
    assert_eq!(plan(&d, &half, Some(&latched), clock()), remove(2));
}

#[test]
fn quorum_zookeeper_recovery_pairs_the_survivor_with_a_fresh_server() {
    let mut d = desired((3, 2), 3);
    d.zookeeper.recover_from = ack(zk_name(3), vec![zk_name(1), zk_name(2)]);
    let mut o = zk_lost(&[]);
    o.zookeeper.members.retain(|m| m.ordinal == 3);
    for n in [1, 2] {
        o.zookeeper.tombstones.push(Tombstone {
            name: zk_name(n),
            ordinal: n,
        });
    }
    // The survivor cannot serve: its list still names the fenced servers. Alone it would run
    // standalone and never grow, so a fresh server listing both comes first.
    let pod = o.zookeeper.members[0].pod.as_mut().expect("pod");
    pod.health = Health::Serving {
        recovered: false,
        leader: false,
    };
    let op = zk_op(&desired((3, 2), 3));
    let pair = || MemberConfig::ZooKeeper {
        servers: vec![zk_name(3), zk_name(4)],
    };
    assert_eq!(
        plan(&d, &o, Some(&op), clock()),
        Decision::CreateMember {
            role: Role::ZooKeeper,
            name: zk_name(4),
            ordinal: 4,
            config: pair(),
        }
    );
    // Then the survivor is restarted with the pair's list, without waiting for the empty one.
    let mut fresh = o.zookeeper.members[0].clone();
    fresh.name = zk_name(4);
    fresh.ordinal = 4;
    let pod = fresh.pod.as_mut().expect("pod");
    pod.config.servers = vec![zk_name(3), zk_name(4)];
    o.zookeeper.members.push(fresh);
    assert_eq!(
        plan(&d, &o, Some(&op), clock()),
        Decision::RestartMember {
            role: Role::ZooKeeper,
            name: zk_name(3),
            config: pair(),
        }
    );
    // Once both serve, the ensemble grows back as usual.
    for (i, m) in o.zookeeper.members.iter_mut().enumerate() {
        let pod = m.pod.as_mut().expect("pod");
        pod.config.servers = vec![zk_name(3), zk_name(4)];
        pod.health = healthy(i == 0);
    }
    assert_eq!(
        plan(&d, &o, Some(&op), clock()),
        Decision::CreateMember {
            role: Role::ZooKeeper,
            name: zk_name(5),
            ordinal: 5,
            config: MemberConfig::ZooKeeper {
                servers: vec![zk_name(3), zk_name(4), zk_name(5)]
            },
        }
    );
}

#[test]
fn quorum_masters_recovery_lowers_the_survivors_quorum() {
    let master = |n: u32| format!("prod-master-{n}");
    let mut d = desired((3, 2), 3);
    d.masters.recover_from = ack(master(2), vec![master(1), master(3)]);
    let mut o = with_masters(&[(2, 2)]);
    health(
        &mut o,
        2,
        Health::Serving {
            recovered: false,
            leader: false,
        },
    );
    o.masters.tombstones = vec![tombstone(1), tombstone(3)];
    let op = operation(OperationKind::Replace, Role::Master, &desired((3, 2), 3));
    assert_eq!(plan(&d, &o, Some(&op), clock()), restart(2, 1));
    // At --quorum=1 alone it recovers; growing back needs a fresh log (Mesos cannot seed new
    // replicas from a single one), which is refused without acknowledgeLogWipe.
    let mut alone = with_masters(&[(2, 1)]);
    alone.masters.tombstones = vec![tombstone(1), tombstone(3)];
    health(&mut alone, 2, healthy(true));
    assert!(matches!(
        plan(&d, &alone, None, clock()),
        Decision::Blocked(BlockReason::LogWipeNotAcknowledged { .. })
    ));
    // A later loss is refused again although the field is still set.
    let mut later = with_masters(&[(2, 2), (4, 2), (5, 2)]);
    later.masters.tombstones = vec![tombstone(1), tombstone(3)];
    for m in &mut later.masters.members {
        m.volume = m.ordinal == 2;
    }
    assert!(matches!(
        plan(&d, &later, None, clock()),
        Decision::Blocked(BlockReason::QuorumDataLost { .. })
    ));
}

#[test]
fn quorum_masters_recovery_keeps_two_survivors_recoverable() {
    // 5 masters at --quorum=3 lose 3 logs: the 2 survivors restart at --quorum=2 (2 <= 2q-1).
    let master = |n: u32| format!("prod-master-{n}");
    let mut d = desired((5, 3), 3);
    d.masters.recover_from = ack(master(4), vec![master(1), master(2), master(3)]);
    let mut o = with_masters(&[(4, 3), (5, 3)]);
    for n in [4, 5] {
        health(
            &mut o,
            n,
            Health::Serving {
                recovered: false,
                leader: false,
            },
        );
    }
    o.masters.tombstones = vec![tombstone(1), tombstone(2), tombstone(3)];
    let op = operation(OperationKind::Grow, Role::Master, &d);
    assert_eq!(
        plan(&d, &o, None, clock()),
        Decision::UpdateOperation(OperationUpdate::Start(op.clone()))
    );
    assert_eq!(plan(&d, &o, Some(&op), clock()), restart(4, 2));
}
