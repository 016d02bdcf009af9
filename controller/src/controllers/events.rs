//! Events, one object per occurrence. kube's `Recorder` folds a repeated Event into a series
//! keyed on its reason and action but not its note, so every later Event of a reason would
//! keep the first one's sentence (`Restart master prod-master-1 ...` for every master); these
//! are rare enough to write one each.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use kube::runtime::events::{Event, EventType};

use super::Context;

/// Writes `event` about `regarding`. Failing to is logged, never fatal.
pub async fn publish(ctx: &Context, event: &Event, regarding: &ObjectReference) {
    let now = Timestamp::now();
    let reporter = &ctx.reporter;
    let object = K8sEvent {
        metadata: ObjectMeta {
            name: Some(format!(
                "{}.{:x}",
                regarding.name.as_deref().unwrap_or("mesos-operator"),
                now.as_nanosecond()
            )),
            namespace: regarding.namespace.clone(),
            ..ObjectMeta::default()
        },
        action: Some(event.action.clone()),
        reason: Some(event.reason.clone()),
        note: event.note.as_ref().map(|n| n.chars().take(1000).collect()),
        type_: Some(match event.type_ {
            EventType::Normal => "Normal".into(),
            EventType::Warning => "Warning".into(),
        }),
        event_time: Some(MicroTime(now)),
        regarding: Some(regarding.clone()),
        related: event.secondary.clone(),
        reporting_controller: Some(reporter.controller.clone()),
        reporting_instance: Some(
            reporter
                .instance
                .clone()
                .unwrap_or_else(|| reporter.controller.clone()),
        ),
        ..K8sEvent::default()
    };
    let ns = regarding.namespace.as_deref().unwrap_or("default");
    let api: Api<K8sEvent> = Api::namespaced(ctx.client.clone(), ns);
    if let Err(e) = api.create(&PostParams::default(), &object).await {
        tracing::warn!(error = %e, reason = %event.reason, "could not publish event");
    }
}
