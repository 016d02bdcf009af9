use super::*;
use crate::controllers::cluster::member::LABEL_CLUSTER;
use crate::controllers::cluster::{masters, test_cluster};

const UID: &str = "0b5c0e6e-1a2b-4c3d-8e9f-001122334455";

fn owner(policy: DeletionPolicy, tombstones: &[&str]) -> DataOwner {
    let mc = test_cluster(json!({}));
    DataOwner::new(
        &mc,
        LABEL_CLUSTER,
        policy,
        tombstones.iter().map(|t| t.to_string()).collect(),
    )
}

/// Applies a JSON merge patch to `obj` (RFC 7386), as the apiserver would.
fn merged<T: serde::Serialize + serde::de::DeserializeOwned>(obj: &T, patch: &Value) -> T {
    fn merge(target: &mut Value, patch: &Value) {
        match (target, patch) {
            (Value::Object(t), Value::Object(p)) => {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
            (t, p) => *t = p.clone(),
        }
    }
    let mut value = serde_json::to_value(obj).unwrap();
    merge(&mut value, patch);
    serde_json::from_value(value).unwrap()
}

fn volume(name: &str, labels: Value, claim_ref: Value) -> PersistentVolume {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"persistentVolumeReclaimPolicy": "Delete", "claimRef": claim_ref},
    }))
    .unwrap()
}

fn bound(mut claim: PersistentVolumeClaim, uid: &str, pv: &str) -> PersistentVolumeClaim {
    claim.metadata.uid = Some(uid.into());
    claim.spec.get_or_insert_default().volume_name = Some(pv.into());
    claim
}

#[test]
fn claims_are_owned_only_under_delete_and_always_stamped() {
    let mut meta = ObjectMeta::default();
    owner(DeletionPolicy::Retain, &[]).stamp(&mut meta);
    assert_eq!(meta.owner_references, None);
    assert_eq!(
        meta.annotations.as_ref().unwrap()[ANNOTATION_OWNER_UID],
        UID
    );
    owner(DeletionPolicy::Delete, &[]).stamp(&mut meta);
    assert_eq!(meta.owner_references.unwrap()[0].uid, UID);
}

#[test]
fn a_claim_is_this_incarnations_by_stamp_or_legacy_owner_reference() {
    let o = owner(DeletionPolicy::Retain, &[]);
    let mc = test_cluster(json!({}));
    let [work, _] = masters::claims(&mc, 1);
    assert!(o.owns(&work));
    let mut legacy = work.clone();
    legacy.metadata.annotations = None;
    legacy.metadata.owner_references = mc.controller_owner_ref(&()).map(|r| vec![r]);
    assert!(o.owns(&legacy));
    let mut foreign = work.clone();
    foreign
        .annotations_mut()
        .insert(ANNOTATION_OWNER_UID.into(), "an-older-incarnation".into());
    assert!(!o.owns(&foreign));
    assert_eq!(o.retained(&[work, legacy, foreign.clone()]), vec![&foreign]);
}

#[test]
fn claim_patches_follow_the_policy_and_settle() {
    let mc = test_cluster(json!({}));
    let mut legacy = masters::claims(&mc, 1)[0].clone();
    legacy.metadata.annotations = None;
    legacy.metadata.owner_references = mc.controller_owner_ref(&()).map(|r| vec![r]);
    let retain = owner(DeletionPolicy::Retain, &[]);
    let patch = retain
        .claim_patch(&legacy)
        .expect("an owned legacy claim is released");
    let after = merged(&legacy, &patch);
    assert!(after.owner_references().is_empty(), "{patch}");
    assert_eq!(retain.claim_patch(&after), None, "settled");
    let delete = owner(DeletionPolicy::Delete, &[]);
    let owned = merged(&after, &delete.claim_patch(&after).unwrap());
    assert_eq!(owned.owner_references()[0].uid, UID);
    assert_eq!(delete.claim_patch(&owned), None);
}

#[test]
fn volumes_are_retained_labelled_and_a_fenced_members_deleted() {
    let mc = test_cluster(json!({}));
    let claim = bound(masters::claims(&mc, 2)[0].clone(), "c2", "pv-2");
    let pv = volume(
        "pv-2",
        json!({}),
        json!({"namespace": "dcos", "name": "prod-master-2-work", "uid": "c2"}),
    );
    let retain = owner(DeletionPolicy::Retain, &[]);
    let patch = retain.volume_patch(&claim, &pv).unwrap();
    let after = merged(&pv, &patch);
    let spec = after.spec.as_ref().unwrap();
    assert_eq!(
        spec.persistent_volume_reclaim_policy.as_deref(),
        Some("Retain")
    );
    assert_eq!(after.labels()[LABEL_CLUSTER], "prod");
    assert_eq!(after.labels()[LABEL_NAMESPACE], "dcos");
    assert_eq!(after.labels()[LABEL_MEMBER], "prod-master-2");
    assert_eq!(after.annotations()[ANNOTATION_CLAIM], "prod-master-2-work");
    assert_eq!(retain.volume_patch(&claim, &after), None, "settled");

    let fencing = owner(DeletionPolicy::Retain, &["prod-master-2"]);
    let fenced = merged(&after, &fencing.volume_patch(&claim, &after).unwrap());
    let spec = fenced.spec.as_ref().unwrap();
    assert_eq!(
        spec.persistent_volume_reclaim_policy.as_deref(),
        Some("Delete")
    );
    assert_eq!(fenced.labels()[LABEL_FENCED], "true");
    assert_eq!(fenced.annotations()[ANNOTATION_TOMBSTONES], "prod-master-2");
    let deleting = owner(DeletionPolicy::Delete, &[]);
    let back = merged(&after, &deleting.volume_patch(&claim, &after).unwrap());
    let spec = back.spec.as_ref().unwrap();
    assert_eq!(
        spec.persistent_volume_reclaim_policy.as_deref(),
        Some("Delete")
    );
}

#[test]
fn orphans_are_our_volumes_no_present_claim_holds() {
    let mc = test_cluster(json!({}));
    let o = owner(DeletionPolicy::Retain, &[]);
    let ours = json!({LABEL_CLUSTER: "prod", LABEL_NAMESPACE: "dcos"});
    let claim = bound(masters::claims(&mc, 1)[0].clone(), "c1", "pv-1");
    let volumes = [
        // held by its bound claim
        volume(
            "pv-1",
            ours.clone(),
            json!({"namespace": "dcos", "name": "prod-master-1-work", "uid": "c1"}),
        ),
        // reserved for a claim of that name, not bound yet
        volume(
            "pv-1b",
            ours.clone(),
            json!({"namespace": "dcos", "name": "prod-master-1-work"}),
        ),
        // its claim was deleted with the namespace: Released
        volume(
            "pv-2",
            ours.clone(),
            json!({"namespace": "dcos", "name": "prod-master-2-work", "uid": "old"}),
        ),
        // a claim of the old name exists, but it is another claim
        volume(
            "pv-3",
            ours,
            json!({"namespace": "dcos", "name": "prod-master-1-work", "uid": "old"}),
        ),
        // another namespace's cluster of the same name
        volume(
            "pv-4",
            json!({LABEL_CLUSTER: "prod", LABEL_NAMESPACE: "staging"}),
            json!({"namespace": "staging", "name": "x", "uid": "u"}),
        ),
    ];
    let names: Vec<String> = o
        .orphans(&volumes, &[claim])
        .iter()
        .map(|v| v.name_any())
        .collect();
    assert_eq!(names, ["pv-2", "pv-3"]);
}

#[test]
fn tombstones_are_read_back_from_annotations_and_fenced_labels() {
    let a: ObjectMeta = serde_json::from_value(json!({
        "annotations": {ANNOTATION_TOMBSTONES: "prod-master-2,prod-zookeeper-4"}
    }))
    .unwrap();
    let b: ObjectMeta = serde_json::from_value(json!({
        "labels": {LABEL_FENCED: "true", LABEL_MEMBER: "prod-master-5"},
        "annotations": {ANNOTATION_TOMBSTONES: ""}
    }))
    .unwrap();
    let c = ObjectMeta::default();
    let found: Vec<String> = recorded_tombstones([&a, &b, &c]).into_iter().collect();
    assert_eq!(
        found,
        ["prod-master-2", "prod-master-5", "prod-zookeeper-4"]
    );
}
