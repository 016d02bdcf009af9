//! The MarathonApp controller: observe (the MesosCluster, its Marathon servers, the app and its
//! deployments) → validate → plan ([`plan::plan`], one write at most) → apply → status
//! ([`plan::assess`], written only when it changed). A finalizer deletes the app in Marathon.

pub mod metrics;
pub mod ownership;
pub mod plan;

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};

use super::conditions::{Desired, merge};
use super::error::{ReconcileError, StatusError};
use super::marathon_access::{self, Access, AccessError};
use super::{Context, FIELD_MANAGER, Managed, accept};
use crate::crd::marathon_app::DeletionPolicy;
use crate::crd::{MarathonApp, MarathonAppStatus, MesosCluster};
use crate::marathon::definition::{app_id, body, expected};
use crate::marathon::http::{HttpMarathon, Limits};
use crate::marathon::{AppInfo, Marathon, MarathonError};
use plan::{Inputs, Observed, Outcome, Step, Why};

pub use metrics::Shared;

/// Removed once the app is gone from Marathon (or orphaned).
pub const FINALIZER: &str = "mesos.operator.dev/marathon-app";
/// How long a deletion waits for an unreachable Marathon before it lets the resource go.
const DELETE_GIVE_UP: Duration = Duration::from_secs(300);
/// How soon a pass that worked on an outdated copy of the object runs again.
const STALE_RETRY: Duration = Duration::from_millis(500);
/// How soon a pass that found no cluster or no Marathon server looks again.
const WAIT_FOR_CLUSTER: Duration = Duration::from_secs(10);

pub async fn reconcile(app: &MarathonApp, ctx: &Context) -> Result<Action, ReconcileError> {
    if app.meta().deletion_timestamp.is_some() {
        return finalize(app, ctx).await;
    }
    let (verdict, _) = accept::verdict(app);
    ctx.metrics.verdict(MarathonApp::CONTROLLER, verdict.reason);
    if !verdict.status {
        // Invalid specs are reported as the other kinds report them, and wait for a change.
        let conditions = plan::blocked(verdict.clone());
        let before = app
            .conditions()
            .iter()
            .find(|c| c.type_ == verdict.type_)
            .cloned();
        if !write_status(app, ctx, &conditions, None, None).await? {
            return Ok(Action::requeue(STALE_RETRY));
        }
        if before.is_none_or(|c| c.status != "False" || c.message != verdict.message) {
            accept::publish(app, ctx, &verdict).await;
        }
        return Ok(Action::await_change());
    }
    if add_finalizer(app, ctx).await? {
        // The next pass starts from the object as patched.
        return Ok(Action::requeue(STALE_RETRY));
    }
    let namespace = app
        .namespace()
        .ok_or(ReconcileError::MissingField("metadata.namespace"))?;
    let Some(marathon) = connect(app, ctx, &namespace).await? else {
        return Ok(Action::requeue(WAIT_FOR_CLUSTER));
    };
    let id = app_id(app.spec.app.id.as_deref(), &namespace, &app.name_any());
    let observed = match observe(&marathon, &id).await {
        Err(e @ MarathonError::Unauthorized { .. }) => {
            // Retrying soon cannot help: the credentials have to change first.
            let message = format!(
                "Marathon refused the operator's credentials ({e}); check spec.marathon.credentials \
                 of MesosCluster {}.",
                app.spec.cluster_ref.name
            );
            let waiting = plan::waiting("MarathonUnauthorized", message);
            write_status(app, ctx, &waiting, None, None).await?;
            return Ok(Action::requeue(WAIT_FOR_CLUSTER));
        }
        other => other?,
    };
    let status = app.status.clone().unwrap_or_default();
    let me = ownership::owner(&namespace, &app.name_any());
    let claim = ownership::claim(observed.app.as_ref(), &me, &status, app.spec.adopt_existing);
    if let Some((reason, message)) = ownership::refusal(&claim, &id) {
        // Not this resource's app: nothing is written to it, ever, until that changes.
        let refused = plan::waiting(reason, message);
        write_status(app, ctx, &refused, None, None).await?;
        return Ok(Action::requeue(plan::RESYNC));
    }
    let observed = Observed {
        app: observed.app.map(ownership::unlabelled),
        ..observed
    };
    let unlabelled = body(&app.spec.app, &id);
    let expected = expected(&unlabelled);
    let body = ownership::labelled(&unlabelled, &me);
    let inputs = Inputs {
        generation: app.meta().generation,
        status: &status,
        expected: &expected,
        timeout: parse_duration(&app.spec.deployment.timeout).unwrap_or(Duration::from_secs(600)),
        rollback_on_timeout: app.spec.deployment.rollback_on_timeout,
        force: app.spec.deployment.force,
        now: Timestamp::now(),
    };
    let step = plan::plan(&inputs, &observed);
    if step != Step::Hold && !is_current(app, ctx).await? {
        return Ok(Action::requeue(STALE_RETRY));
    }
    let outcome = apply(&marathon, &id, &body, &step).await?;
    announce(app, ctx, &id, &step, &outcome).await;
    let assessment = plan::assess(&inputs, &observed, &step, &outcome);
    let bookkeeping = MarathonAppStatus {
        applied_generation: assessment.applied_generation,
        rolled_back_generation: assessment.rolled_back_generation,
        deployment_id: assessment.deployment_id.clone(),
        ..MarathonAppStatus::default()
    };
    let written = write_status(
        app,
        ctx,
        &assessment.conditions,
        Some(observed.app.as_ref()),
        Some(bookkeeping),
    )
    .await?;
    if !written {
        if outcome != Outcome::None {
            record_write(app, ctx, &assessment).await?;
        }
        return Ok(Action::requeue(STALE_RETRY));
    }
    let was_invalid = app
        .conditions()
        .iter()
        .any(|c| c.type_ == verdict.type_ && c.status == "False");
    let accepted = assessment
        .conditions
        .iter()
        .any(|c| c.type_ == verdict.type_ && c.status);
    if was_invalid && accepted {
        // As for the other kinds: the spec is valid again.
        accept::publish(app, ctx, &verdict).await;
    }
    Ok(assessment
        .requeue
        .map_or_else(Action::await_change, Action::requeue))
}

/// Whether `app` is the object as the apiserver has it now. The controller may hand a pass an
/// object older than the status this controller last wrote (its cache lags its own writes), and
/// a Marathon write decided on such a copy could undo a rollback or repeat a creation.
async fn is_current(app: &MarathonApp, ctx: &Context) -> Result<bool, ReconcileError> {
    let fresh = api(app, ctx)?
        .get(&app.name_any())
        .await
        .map_err(|source| ReconcileError::Kube {
            what: "reading the MarathonApp".into(),
            source,
        })?;
    Ok(fresh.resource_version() == app.resource_version())
}

/// A client for the cluster's Marathon, or `None` (with the status saying why) when there is no
/// cluster or no Marathon server yet.
async fn connect(
    app: &MarathonApp,
    ctx: &Context,
    namespace: &str,
) -> Result<Option<HttpMarathon>, ReconcileError> {
    let cluster = &app.spec.cluster_ref.name;
    let (reason, message) = match reach(ctx, namespace, cluster).await? {
        Reach::Marathon(m) => return Ok(Some(m)),
        Reach::NoCluster => (
            "ClusterNotFound",
            format!("MesosCluster {cluster} does not exist."),
        ),
        Reach::NoServer => (
            "MarathonUnavailable",
            format!("MesosCluster {cluster} has no running Marathon server."),
        ),
        Reach::NoAccess(e) => (
            e.reason(),
            format!("Cannot reach the Marathon of MesosCluster {cluster}: {e}."),
        ),
    };
    write_status(app, ctx, &plan::waiting(reason, message), None, None).await?;
    Ok(None)
}

/// How the cluster's Marathon can be reached.
enum Reach {
    NoCluster,
    NoServer,
    /// The cluster's TLS or credentials Secret is missing or unusable.
    NoAccess(AccessError),
    Marathon(HttpMarathon),
}

async fn reach(ctx: &Context, namespace: &str, cluster: &str) -> Result<Reach, ReconcileError> {
    let clusters: Api<MesosCluster> = Api::namespaced(ctx.client.clone(), namespace);
    let found = clusters
        .get_opt(cluster)
        .await
        .map_err(|source| ReconcileError::Kube {
            what: format!("reading MesosCluster {cluster}"),
            source,
        })?;
    let Some(mc) = found else {
        return Ok(Reach::NoCluster);
    };
    let access = match Access::read(&ctx.client, &mc).await {
        Ok(access) => access,
        Err(e @ AccessError::Kube { .. }) => return Err(e.into()),
        Err(e) => return Ok(Reach::NoAccess(e)),
    };
    let pods = marathon_access::pods(&ctx.client, &mc).await?;
    let client = match access.connect(
        &pods,
        &ctx.marathon_clients,
        Limits::default(),
        ctx.marathon.calls.clone(),
    ) {
        Ok(Some(client)) => client,
        Ok(None) => return Ok(Reach::NoServer),
        Err(e) => return Ok(Reach::NoAccess(e)),
    };
    Ok(Reach::Marathon(client.discover_leader().await))
}

/// The app and, when it reports some, its deployments.
async fn observe(marathon: &impl Marathon, id: &str) -> Result<Observed, MarathonError> {
    let app = marathon.app(id).await?;
    let deployments = match &app {
        Some(a) if !a.deployments.is_empty() => marathon
            .deployments()
            .await?
            .into_iter()
            .filter(|d| a.deployments.contains(&d.id))
            .collect(),
        _ => Vec::new(),
    };
    Ok(Observed { app, deployments })
}

/// Makes the planned write. A 409 lock and a 422 are outcomes, not errors.
async fn apply(
    marathon: &impl Marathon,
    id: &str,
    body: &serde_json::Value,
    step: &Step,
) -> Result<Outcome, MarathonError> {
    let result = match step {
        Step::Hold => return Ok(Outcome::None),
        Step::Put { force, .. } => marathon
            .put_app(id, body, *force)
            .await
            .map(Outcome::Deployed),
        Step::RollBack { deployment, .. } => marathon
            .roll_back(deployment)
            .await
            .map(Outcome::RolledBack),
    };
    match result {
        Err(MarathonError::Locked { deployments }) => Ok(Outcome::Locked(deployments)),
        Err(e @ MarathonError::Invalid { .. }) => Ok(Outcome::Rejected(e.to_string())),
        other => other,
    }
}

/// One Event per write (or refusal), saying what and why.
async fn announce(app: &MarathonApp, ctx: &Context, id: &str, step: &Step, outcome: &Outcome) {
    let (type_, reason, note) = match (step, outcome) {
        (Step::Put { why, .. }, Outcome::Deployed(d)) => match why {
            Why::Create => (
                EventType::Normal,
                "Created",
                format!(
                    "Created Marathon app {id} (deployment {}).",
                    d.deployment_id
                ),
            ),
            Why::Update => (
                EventType::Normal,
                "Updated",
                format!(
                    "Updated Marathon app {id} (deployment {}).",
                    d.deployment_id
                ),
            ),
            Why::Restore(diff) => (
                EventType::Warning,
                "DriftCorrected",
                format!(
                    "Marathon app {id} was changed outside the operator and is restored: {}.",
                    diff.join("; ")
                ),
            ),
            Why::Recreate => (
                EventType::Warning,
                "Recreated",
                format!("Marathon app {id} was deleted outside the operator and is recreated."),
            ),
        },
        (_, Outcome::Rejected(message)) => (
            EventType::Warning,
            "Invalid",
            format!("Marathon rejected app {id}: {message}"),
        ),
        (Step::RollBack { deployment, .. }, Outcome::RolledBack(d)) => (
            EventType::Warning,
            "DeploymentTimedOut",
            format!(
                "Deployment {deployment} of {id} timed out; rolled back by deployment {}.",
                d.deployment_id
            ),
        ),
        _ => return,
    };
    publish(app, ctx, type_, reason, note).await;
}

async fn publish(app: &MarathonApp, ctx: &Context, type_: EventType, reason: &str, note: String) {
    tracing::info!(reason, %note, "MarathonApp event");
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note.chars().take(1000).collect()),
        action: "Reconcile".into(),
        secondary: None,
    };
    crate::controllers::events::publish(ctx, &event, &app.object_ref(&())).await;
}

/// Merges `conditions` into the status, mirrors what Marathon reported (`observed`: `None` when
/// Marathon was not asked, `Some(None)` when the app is absent) and writes only if it changed.
/// `Ok(false)`: the object changed since this pass read it, so nothing was written.
async fn write_status(
    app: &MarathonApp,
    ctx: &Context,
    conditions: &[Desired],
    observed: Option<Option<&AppInfo>>,
    bookkeeping: Option<MarathonAppStatus>,
) -> Result<bool, ReconcileError> {
    let old = app.status.clone().unwrap_or_default();
    let generation = app.meta().generation;
    let now = Timestamp::now();
    let mut next = match observed {
        None => old.clone(),
        Some(info) => mirror(info),
    };
    if let Some(b) = bookkeeping {
        next.applied_generation = b.applied_generation;
        next.rolled_back_generation = b.rolled_back_generation;
        next.deployment_id = b.deployment_id;
    } else {
        next.applied_generation = old.applied_generation;
        next.rolled_back_generation = old.rolled_back_generation;
    }
    next.observed_generation = generation;
    next.conditions = conditions.iter().fold(old.conditions.clone(), |cs, want| {
        merge(&cs, want, generation, now)
    });
    ctx.marathon
        .record(&app_key(app), metrics::state_of(&next.conditions));
    if next == old {
        return Ok(true);
    }
    // The resourceVersion makes the apply conditional: a pass on an outdated copy must not
    // overwrite what a later pass recorded (a rollback, the applied generation).
    let body = serde_json::json!({
        "apiVersion": MarathonApp::api_version(&()),
        "kind": MarathonApp::kind(&()),
        "metadata": {"resourceVersion": app.resource_version()},
        "status": next,
    });
    match api(app, ctx)?
        .patch_status(
            &app.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
    {
        Ok(_) => {
            let ready = next.conditions.iter().find(|c| c.type_ == plan::READY);
            tracing::info!(
                ready = ready.map(|c| c.status.as_str()),
                reason = ready.map(|c| c.reason.as_str()),
                message = ready.map(|c| c.message.as_str()),
                "status updated"
            );
            Ok(true)
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(StatusError::Patch(e).into()),
    }
}

/// Records what a write to Marathon changed when the status of the pass that made it could not
/// be written: without it, a rolled-back spec would be applied again.
async fn record_write(
    app: &MarathonApp,
    ctx: &Context,
    assessment: &plan::Assessment,
) -> Result<(), ReconcileError> {
    let patch = serde_json::json!({"status": {
        "appliedGeneration": assessment.applied_generation,
        "rolledBackGeneration": assessment.rolled_back_generation,
    }});
    api(app, ctx)?
        .patch_status(
            &app.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(StatusError::Patch)?;
    Ok(())
}

fn api(app: &MarathonApp, ctx: &Context) -> Result<Api<MarathonApp>, ReconcileError> {
    let namespace = app
        .namespace()
        .ok_or(ReconcileError::MissingField("metadata.namespace"))?;
    Ok(Api::namespaced(ctx.client.clone(), &namespace))
}

/// The status fields that mirror Marathon's view of the app.
fn mirror(info: Option<&AppInfo>) -> MarathonAppStatus {
    let Some(a) = info else {
        return MarathonAppStatus::default();
    };
    MarathonAppStatus {
        version: a.version.clone(),
        tasks_running: Some(a.tasks_running),
        tasks_staged: Some(a.tasks_staged),
        tasks_healthy: Some(a.tasks_healthy),
        tasks_unhealthy: Some(a.tasks_unhealthy),
        last_task_failure: a.last_task_failure.clone(),
        ..MarathonAppStatus::default()
    }
}

fn app_key(app: &MarathonApp) -> String {
    format!("{}/{}", app.namespace().unwrap_or_default(), app.name_any())
}

/// Adds the finalizer; `true` if it had to.
async fn add_finalizer(app: &MarathonApp, ctx: &Context) -> Result<bool, ReconcileError> {
    if app.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(false);
    }
    let mut finalizers = app.finalizers().to_vec();
    finalizers.push(FINALIZER.into());
    patch_finalizers(app, ctx, finalizers).await?;
    Ok(true)
}

/// Replaces the finalizer list, guarded by the resourceVersion the decision was made on.
async fn patch_finalizers(
    app: &MarathonApp,
    ctx: &Context,
    finalizers: Vec<String>,
) -> Result<(), ReconcileError> {
    let patch = serde_json::json!({"metadata": {
        "finalizers": finalizers,
        "resourceVersion": app.resource_version(),
    }});
    api(app, ctx)?
        .patch(
            &app.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(|source| ReconcileError::Kube {
            what: "patching finalizers".into(),
            source,
        })?;
    Ok(())
}

/// Deletion: remove the app from Marathon (policy `Delete`) or leave it (`Orphan`), then the
/// finalizer. A cluster that is gone, or a Marathon unreachable for [`DELETE_GIVE_UP`], does not
/// hold the resource forever: it goes with a Warning Event.
async fn finalize(app: &MarathonApp, ctx: &Context) -> Result<Action, ReconcileError> {
    if !app.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    let namespace = app
        .namespace()
        .ok_or(ReconcileError::MissingField("metadata.namespace"))?;
    let id = app_id(app.spec.app.id.as_deref(), &namespace, &app.name_any());
    let (type_, reason, note) = match app.spec.deletion_policy {
        DeletionPolicy::Orphan => (
            EventType::Normal,
            "Orphaned",
            format!("Marathon app {id} is left running (deletionPolicy Orphan)."),
        ),
        DeletionPolicy::Delete => match delete_in_marathon(app, ctx, &namespace, &id).await {
            Ok(note) => (EventType::Normal, "Deleted", note),
            Err(Gone::Cluster) => (
                EventType::Warning,
                "ClusterGone",
                format!(
                    "MesosCluster {} no longer exists; Marathon app {id} could not be deleted.",
                    app.spec.cluster_ref.name
                ),
            ),
            Err(Gone::Unreachable(e)) => {
                let waited = app
                    .meta()
                    .deletion_timestamp
                    .as_ref()
                    .and_then(|t| Timestamp::now().duration_since(t.0).try_into().ok())
                    .unwrap_or(Duration::ZERO);
                if waited < DELETE_GIVE_UP {
                    return Err(e);
                }
                (
                    EventType::Warning,
                    "DeleteAbandoned",
                    format!(
                        "Marathon app {id} could not be deleted for {DELETE_GIVE_UP:?} ({e}); the resource goes, the app may remain."
                    ),
                )
            }
        },
    };
    publish(app, ctx, type_, reason, note).await;
    let rest: Vec<String> = app
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    patch_finalizers(app, ctx, rest).await?;
    ctx.marathon.forget(&app_key(app));
    Ok(Action::await_change())
}

/// Why an app could not be deleted in Marathon.
enum Gone {
    Cluster,
    Unreachable(ReconcileError),
}

async fn delete_in_marathon(
    app: &MarathonApp,
    ctx: &Context,
    namespace: &str,
    id: &str,
) -> Result<String, Gone> {
    let cluster = &app.spec.cluster_ref.name;
    let marathon = match reach(ctx, namespace, cluster)
        .await
        .map_err(Gone::Unreachable)?
    {
        Reach::NoCluster => return Err(Gone::Cluster),
        Reach::NoServer => return Err(Gone::Unreachable(MarathonError::NoServer.into())),
        Reach::NoAccess(e) => return Err(Gone::Unreachable(e.into())),
        Reach::Marathon(m) => m,
    };
    // Only this resource's own app is deleted: one adopted, created or labelled by it.
    let me = ownership::owner(namespace, &app.name_any());
    let status = app.status.clone().unwrap_or_default();
    let existing = marathon
        .app(id)
        .await
        .map_err(|e| Gone::Unreachable(e.into()))?;
    let claim = ownership::claim(existing.as_ref(), &me, &status, app.spec.adopt_existing);
    if let Some((_, why)) = ownership::refusal(&claim, id) {
        return Ok(format!("Marathon app {id} is not deleted: {why}"));
    }
    match marathon.delete_app(id).await {
        Ok(Some(d)) => Ok(format!(
            "Deleted Marathon app {id} (deployment {}).",
            d.deployment_id
        )),
        Ok(None) => Ok(format!("Marathon app {id} was already gone.")),
        Err(e) => Err(Gone::Unreachable(e.into())),
    }
}

/// `30s`, `10m`, `1h30m`, `500ms` (the CRD's duration pattern).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, len) = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
            .into_iter()
            .find(|(u, _)| rest.starts_with(u))
            .map(|(u, ms)| (ms, u.len()))?;
        total += Duration::from_millis(n.checked_mul(unit)?);
        rest = &rest[len..];
    }
    (!s.is_empty()).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::marathon::{Deployment, DeploymentRef, FieldError};

    /// Answers every write with the error it was built with; reads describe one app.
    struct Answers {
        put: fn() -> MarathonError,
    }

    impl Marathon for Answers {
        async fn app(&self, _: &str) -> Result<Option<AppInfo>, MarathonError> {
            Ok(Some(AppInfo::from_json(
                serde_json::json!({"id": "/t/web", "deployments": [{"id": "d2"}]}),
            )))
        }
        async fn put_app(
            &self,
            _: &str,
            _: &serde_json::Value,
            _: bool,
        ) -> Result<DeploymentRef, MarathonError> {
            Err((self.put)())
        }
        async fn delete_app(&self, _: &str) -> Result<Option<DeploymentRef>, MarathonError> {
            Ok(None)
        }
        async fn deployments(&self) -> Result<Vec<Deployment>, MarathonError> {
            let d = |id: &str, app: &str| Deployment {
                id: id.into(),
                version: "2026-11-23T12:00:00.000Z".into(),
                affected_apps: vec![app.into()],
            };
            Ok(vec![d("d1", "/t/other"), d("d2", "/t/web")])
        }
        async fn roll_back(&self, _: &str) -> Result<DeploymentRef, MarathonError> {
            Err(MarathonError::NoServer)
        }
    }

    #[tokio::test]
    async fn locks_and_rejections_are_outcomes_other_errors_fail_the_pass() {
        let put = Step::Put {
            force: false,
            why: Why::Update,
        };
        let body = serde_json::json!({});
        let locked = Answers {
            put: || MarathonError::Locked {
                deployments: vec!["d2".into()],
            },
        };
        assert_eq!(
            apply(&locked, "/t/web", &body, &put).await.unwrap(),
            Outcome::Locked(vec!["d2".into()])
        );
        let invalid = Answers {
            put: || MarathonError::Invalid {
                message: "Object is not valid".into(),
                details: vec![FieldError {
                    path: "/cpus".into(),
                    errors: vec!["too small".into()],
                }],
            },
        };
        assert_eq!(
            apply(&invalid, "/t/web", &body, &put).await.unwrap(),
            Outcome::Rejected("Object is not valid: /cpus: too small".into())
        );
        let failing = Answers {
            put: || MarathonError::Server {
                status: 503,
                message: "zk timeout".into(),
            },
        };
        assert!(apply(&failing, "/t/web", &body, &put).await.is_err());
        assert_eq!(
            apply(&failing, "/t/web", &body, &Step::Hold).await.unwrap(),
            Outcome::None
        );
        let observed = observe(&failing, "/t/web").await.unwrap();
        let ids: Vec<&str> = observed.deployments.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["d2"], "only the app's own deployments");
    }

    #[test]
    fn durations() {
        let table = [
            ("10m", Some(600)),
            ("1h30m", Some(5400)),
            ("45s", Some(45)),
            ("", None),
            ("10", None),
            ("5d", None),
        ];
        for (s, secs) in table {
            assert_eq!(parse_duration(s), secs.map(Duration::from_secs), "{s}");
        }
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
    }
}
