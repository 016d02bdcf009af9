use super::*;
use crate::controllers::cluster::test_cluster;
use crate::controllers::retention::ANNOTATION_TOMBSTONES;
use crate::quorum::Tombstone;

fn foreign(mut claim: PersistentVolumeClaim) -> PersistentVolumeClaim {
    claim
        .annotations_mut()
        .insert(ANNOTATION_OWNER_UID.into(), "deleted-incarnation".into());
    claim
        .annotations_mut()
        .insert(ANNOTATION_TOMBSTONES.into(), "prod-master-4".into());
    claim
}

fn released(name: &str, member: &str, claim: &str, fenced: bool) -> PersistentVolume {
    let mut labels = json!({LABEL_CLUSTER: "prod", LABEL_NAMESPACE: "dcos", LABEL_MEMBER: member});
    if fenced {
        labels[LABEL_FENCED] = json!("true");
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels, "annotations": {ANNOTATION_CLAIM: claim}},
        "spec": {"persistentVolumeReclaimPolicy": "Retain", "storageClassName": "local-dir",
                 "capacity": {"storage": "128Gi"},
                 "claimRef": {"namespace": "dcos", "name": claim, "uid": "gone"}},
    }))
    .unwrap()
}

#[test]
fn a_fresh_cluster_finds_nothing() {
    let mc = test_cluster(json!({}));
    let claims: Vec<PersistentVolumeClaim> = masters::claims(&mc, 1).into();
    let r = Retained::find(&owner(&mc), &claims, &[]);
    assert!(r.is_empty() && r.tombstones.is_empty(), "{r:?}");
}

#[test]
fn claims_and_released_volumes_of_a_deleted_incarnation_are_found_with_their_fencing() {
    let mc = test_cluster(json!({}));
    let mut claims = vec![foreign(zookeeper::claim(&mc, 1))];
    claims.extend(masters::claims(&mc, 1).map(foreign));
    // A claim the garbage collector is about to delete (deletionPolicy: Delete).
    let mut owned = foreign(zookeeper::claim(&mc, 2));
    owned.metadata.owner_references = Some(vec![Default::default()]);
    claims.push(owned);
    let volumes = [
        released("pv-m2", "prod-master-2", "prod-master-2-work", false),
        released("pv-m3", "prod-master-3", "prod-master-3-work", true),
    ];
    let r = Retained::find(&owner(&mc), &claims, &volumes);
    let names: Vec<String> = r.claims.iter().map(|c| c.name_any()).collect();
    assert_eq!(
        names,
        [
            "prod-zookeeper-1-data",
            "prod-master-1-work",
            "prod-master-1-logs"
        ]
    );
    assert_eq!(r.collecting, ["prod-zookeeper-2-data"]);
    let vols: Vec<String> = r.volumes.iter().map(|v| v.name_any()).collect();
    assert_eq!(vols, ["pv-m2"], "a fenced member's volume is never adopted");
    let t: Vec<&str> = r.tombstones.iter().map(String::as_str).collect();
    assert_eq!(t, ["prod-master-3", "prod-master-4"]);
    let msg = r.message();
    assert!(
        msg.contains("prod-master-1-work") && msg.contains("pv-m2"),
        "{msg}"
    );
    assert!(msg.contains("spec.adoptRetainedData"), "{msg}");
    assert!(msg.contains("garbage-collected"), "{msg}");
}

#[test]
fn fenced_members_claims_are_left_to_fencing_not_reported() {
    let mut mc = test_cluster(json!({}));
    mc.status
        .get_or_insert_default()
        .tombstones
        .masters
        .push(Tombstone {
            name: "prod-master-1".into(),
            ordinal: 1,
        });
    let claims: Vec<PersistentVolumeClaim> = masters::claims(&mc, 1).map(foreign).into();
    let r = Retained::find(&owner(&mc), &claims, &[]);
    assert!(r.is_empty(), "{r:?}");
    // prod-master-4 is recorded on the claims and not yet in status.
    assert_eq!(r.tombstones.len(), 1);
}

#[test]
fn member_names_map_to_roles_and_volumes_to_their_claims() {
    let mc = test_cluster(json!({}));
    assert_eq!(role_of(&mc, "prod-zookeeper-3"), Some(Role::ZooKeeper));
    assert_eq!(role_of(&mc, "prod-master-12"), Some(Role::Master));
    assert_eq!(role_of(&mc, "staging-master-1"), None);
    let c = claim_for(
        &mc,
        &released("pv", "prod-master-2", "prod-master-2-logs", false),
    )
    .unwrap();
    assert_eq!(c.name_any(), "prod-master-2-logs");
    assert!(
        claim_for(
            &mc,
            &released("pv", "prod-master-2", "prod-master-2-other", false)
        )
        .is_none()
    );
}

#[test]
fn this_incarnations_own_released_volume_is_not_retained_data() {
    // A member's claim deleted under the running cluster: its volume is Released, but it is
    // this incarnation's (the planner replaces the member); it must not stop the cluster.
    let mc = test_cluster(json!({}));
    let mut own = released("pv-m2", "prod-master-2", "prod-master-2-work", false);
    own.annotations_mut().insert(
        ANNOTATION_OWNER_UID.into(),
        mc.metadata.uid.clone().unwrap(),
    );
    let claims: Vec<PersistentVolumeClaim> = masters::claims(&mc, 1).into();
    let r = Retained::find(&owner(&mc), &claims, &[own]);
    assert!(r.is_empty() && r.tombstones.is_empty(), "{r:?}");
}
