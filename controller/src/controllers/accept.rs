//! The validate and status stages: report whether the spec is `Accepted` or `Invalid`.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};

use super::conditions::{self, ACCEPTED, Desired};
use super::error::ReconcileError;
use super::status::{self, StatusUpdate};
use super::{Context, Managed};

/// How often a valid object is looked at again without any change.
const RESYNC: Duration = Duration::from_secs(600);

/// The verdict of validation as a condition and a phase.
pub fn verdict<K: Managed>(obj: &K) -> (Desired, &'static str) {
    match obj.validate() {
        Ok(()) => (
            Desired {
                type_: ACCEPTED,
                status: true,
                reason: "Valid",
                message: "The spec is valid.".into(),
            },
            "Accepted",
        ),
        Err(errors) => (
            Desired {
                type_: ACCEPTED,
                status: false,
                reason: "Invalid",
                message: errors.to_string(),
            },
            "Invalid",
        ),
    }
}

/// The status the object should have, or `None` when it already has it.
pub fn plan_status<K: Managed>(obj: &K, now: Timestamp) -> Option<StatusUpdate> {
    let (want, phase) = verdict(obj);
    let generation = obj.meta().generation;
    let conditions = conditions::merge(obj.conditions(), &want, generation, now);
    let phase = K::HAS_PHASE.then_some(phase);
    let unchanged = conditions == obj.conditions()
        && obj.observed_generation() == generation
        && obj.phase() == phase;
    (!unchanged).then(|| StatusUpdate {
        observed_generation: generation,
        conditions,
        phase: phase.map(String::from),
    })
}

pub async fn reconcile<K: Managed>(obj: &K, ctx: &Context) -> Result<Action, ReconcileError> {
    let (want, _) = verdict(obj);
    ctx.metrics.verdict(K::CONTROLLER, want.reason);
    if let Some(update) = plan_status(obj, Timestamp::now()) {
        let before = conditions::find(obj.conditions(), ACCEPTED)
            .map(|c| (c.status.clone(), c.message.clone()));
        status::apply(obj, &update, &ctx.client).await?;
        let after = (
            if want.status { "True" } else { "False" }.to_string(),
            want.message.clone(),
        );
        if before.as_ref() != Some(&after) {
            publish(obj, ctx, &want).await;
        }
        tracing::info!(
            accepted = want.status,
            reason = want.reason,
            "status updated"
        );
    }
    Ok(if want.status {
        Action::requeue(RESYNC)
    } else {
        Action::await_change()
    })
}

/// An Event when the verdict changes. Failing to publish one is logged, not fatal.
pub(crate) async fn publish<K: Managed>(obj: &K, ctx: &Context, want: &Desired) {
    let event = Event {
        type_: if want.status {
            EventType::Normal
        } else {
            EventType::Warning
        },
        reason: want.reason.to_string(),
        note: Some(want.message.chars().take(1000).collect()),
        action: "Validate".into(),
        secondary: None,
    };
    crate::controllers::events::publish(ctx, &event, &obj.object_ref(&())).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{MarathonApp, MesosCluster};

    fn cluster(spec: serde_json::Value) -> MesosCluster {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "mesos.operator.dev/v1alpha1", "kind": "MesosCluster",
            "metadata": {"name": "prod", "namespace": "ns", "generation": 3}, "spec": spec
        }))
        .unwrap()
    }

    fn with_status(mut mc: MesosCluster, update: StatusUpdate) -> MesosCluster {
        let status = mc.status.get_or_insert_default();
        status.conditions = update.conditions;
        status.observed_generation = update.observed_generation;
        status.phase = update.phase;
        mc
    }

    #[test]
    fn valid_spec_is_accepted_once_then_left_alone() {
        let now: Timestamp = "2026-11-23T09:00:00Z".parse().unwrap();
        let mc = cluster(serde_json::json!({}));
        let update = plan_status(&mc, now).expect("first reconcile writes status");
        assert_eq!(update.phase.as_deref(), Some("Accepted"));
        assert_eq!(update.observed_generation, Some(3));
        assert_eq!(update.conditions[0].reason, "Valid");
        let later: Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
        assert_eq!(
            plan_status(&with_status(mc, update), later),
            None,
            "no write when nothing changed"
        );
    }

    #[test]
    fn invalid_spec_names_the_field_and_flips_the_condition() {
        let now: Timestamp = "2026-11-23T09:00:00Z".parse().unwrap();
        let accepted = plan_status(&cluster(serde_json::json!({})), now).unwrap();
        let broken = with_status(
            cluster(serde_json::json!({"masters": {"replicas": 4}})),
            accepted,
        );
        let update = plan_status(&broken, now).expect("verdict changed");
        let c = &update.conditions[0];
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "Invalid"));
        assert!(
            c.message
                .starts_with("spec.masters.replicas: replicas must be odd"),
            "{}",
            c.message
        );
        assert_eq!(update.phase.as_deref(), Some("Invalid"));
    }

    #[test]
    fn marathon_app_status_has_no_phase() {
        let now: Timestamp = "2026-11-23T09:00:00Z".parse().unwrap();
        let app: MarathonApp = serde_json::from_value(serde_json::json!({
            "apiVersion": "mesos.operator.dev/v1alpha1", "kind": "MarathonApp",
            "metadata": {"name": "web", "namespace": "ns", "generation": 1},
            "spec": {"clusterRef": {"name": "prod"}, "app": {"cmd": "sleep 1"}}
        }))
        .unwrap();
        assert_eq!(plan_status(&app, now).unwrap().phase, None);
    }
}
