//! The plan and status stages of a MarathonApp, as pure functions: [`plan`] picks the one write
//! a pass makes (if any) from what Marathon reports; [`assess`] turns what Marathon reported and
//! how the write went into conditions, the requeue delay and the bookkeeping in status.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use crate::controllers::conditions::{ACCEPTED, Desired};
use crate::crd::MarathonAppStatus;
use crate::marathon::definition::differences;
use crate::marathon::{AppInfo, Deployment, DeploymentRef};

pub const READY: &str = "Ready";
pub const PROGRESSING: &str = "Progressing";
pub const DEGRADED: &str = "Degraded";

/// How soon a pass with a deployment in flight looks again.
pub const WATCH_DEPLOYMENT: Duration = Duration::from_secs(2);
/// How often a settled app is compared with Marathon (drift, deletion in Marathon, task counts).
pub const RESYNC: Duration = Duration::from_secs(30);

/// What the observe stage saw in Marathon.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    pub app: Option<AppInfo>,
    /// The deployments changing this app (read only when the app reports some).
    pub deployments: Vec<Deployment>,
}

/// Everything else a decision depends on.
#[derive(Clone, Debug)]
pub struct Inputs<'a> {
    pub generation: Option<i64>,
    pub status: &'a MarathonAppStatus,
    /// What Marathon should report ([`crate::marathon::definition::expected`]).
    pub expected: &'a Value,
    pub timeout: Duration,
    pub rollback_on_timeout: bool,
    pub force: bool,
    pub now: Timestamp,
}

/// Why the app is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Why {
    Create,
    Update,
    /// Changed in Marathon behind the operator's back: what differed.
    Restore(Vec<String>),
    /// Deleted in Marathon behind the operator's back.
    Recreate,
}

/// The one write of a pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing to write.
    Hold,
    /// `PUT /v2/apps/{id}` with the whole definition.
    Put { force: bool, why: Why },
    /// `DELETE /v2/deployments/{id}`: the deployment ran past the timeout.
    RollBack {
        deployment: String,
        /// Whether it was deploying the current spec (which is then not applied again).
        current: bool,
    },
}

/// How the write went.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// No write was made.
    None,
    Deployed(DeploymentRef),
    /// 409: locked by these deployments.
    Locked(Vec<String>),
    /// 422 (or 400): Marathon's message with its field errors.
    Rejected(String),
    RolledBack(DeploymentRef),
}

/// Conditions, requeue delay and bookkeeping after a pass.
#[derive(Clone, Debug, PartialEq)]
pub struct Assessment {
    pub conditions: Vec<Desired>,
    /// `None`: wait for a change of the object.
    pub requeue: Option<Duration>,
    pub applied_generation: Option<i64>,
    pub rolled_back_generation: Option<i64>,
    pub deployment_id: Option<String>,
}

fn rejected_for(inputs: &Inputs) -> Option<String> {
    inputs
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == ACCEPTED && c.status == "False" && c.reason == "Invalid")
        .filter(|c| c.observed_generation == inputs.generation)
        .map(|c| c.message.clone())
}

fn held_after_rollback(inputs: &Inputs) -> bool {
    inputs.generation.is_some() && inputs.status.rolled_back_generation == inputs.generation
}

/// The deployment of the app that has run longer than the timeout, if any.
fn overdue<'a>(inputs: &Inputs, observed: &'a Observed) -> Option<&'a Deployment> {
    observed.deployments.iter().find(|d| {
        d.version
            .parse::<Timestamp>()
            .ok()
            .and_then(|started| inputs.now.duration_since(started).try_into().ok())
            .is_some_and(|age: Duration| age > inputs.timeout)
    })
}

/// The one write this pass makes.
pub fn plan(inputs: &Inputs, observed: &Observed) -> Step {
    if rejected_for(inputs).is_some() || held_after_rollback(inputs) {
        return Step::Hold;
    }
    let Some(app) = &observed.app else {
        let why = if inputs.status.applied_generation.is_some() {
            Why::Recreate
        } else {
            Why::Create
        };
        return Step::Put { force: false, why };
    };
    let diff = differences(inputs.expected, &app.app);
    if !app.deployments.is_empty() {
        if !diff.is_empty() && inputs.force {
            return Step::Put {
                force: true,
                why: Why::Update,
            };
        }
        return match overdue(inputs, observed) {
            Some(d) if inputs.rollback_on_timeout => Step::RollBack {
                deployment: d.id.clone(),
                current: diff.is_empty(),
            },
            _ => Step::Hold,
        };
    }
    if diff.is_empty() {
        return Step::Hold;
    }
    let why = if inputs.status.applied_generation == inputs.generation {
        Why::Restore(diff)
    } else {
        Why::Update
    };
    Step::Put { force: false, why }
}

fn cond(type_: &'static str, status: bool, reason: &'static str, message: String) -> Desired {
    Desired {
        type_,
        status,
        reason,
        message,
    }
}

/// Ready, Progressing and Degraded with one reason; Ready and Progressing as given.
fn three(
    ready: bool,
    progressing: bool,
    degraded: bool,
    reason: &'static str,
    message: String,
) -> Vec<Desired> {
    vec![
        cond(ACCEPTED, true, "Valid", "The spec is valid.".into()),
        cond(READY, ready, reason, message.clone()),
        cond(PROGRESSING, progressing, reason, message.clone()),
        cond(DEGRADED, degraded, reason, message),
    ]
}

/// Conditions of a spec that failed validation: nothing is done until it changes.
pub fn blocked(verdict: Desired) -> Vec<Desired> {
    let mut c = three(false, false, false, verdict.reason, verdict.message.clone());
    c[0] = verdict;
    c
}

/// Conditions while the cluster or its Marathon is missing.
pub fn waiting(reason: &'static str, message: String) -> Vec<Desired> {
    three(false, false, true, reason, message)
}

fn failure_text(app: Option<&AppInfo>) -> String {
    app.and_then(|a| a.last_task_failure.as_ref())
        .and_then(|f| f.get("message").and_then(Value::as_str))
        .map(|m| format!(" Last task failure: {m}"))
        .unwrap_or_default()
}

/// Whether every instance runs (and passes its health checks, if it has any).
fn tasks_ready(expected: &Value, app: &AppInfo) -> (bool, String) {
    let instances = expected
        .get("instances")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let checked = expected
        .get("healthChecks")
        .and_then(Value::as_array)
        .is_some_and(|h| !h.is_empty());
    if checked {
        let n = i64::from(app.tasks_healthy);
        (n == instances, format!("{n}/{instances} tasks healthy."))
    } else {
        let n = i64::from(app.tasks_running);
        (n == instances, format!("{n}/{instances} tasks running."))
    }
}

/// Conditions, requeue and bookkeeping after `step` had `outcome`.
pub fn assess(inputs: &Inputs, observed: &Observed, step: &Step, outcome: &Outcome) -> Assessment {
    let generation = inputs.generation;
    let app = observed.app.as_ref();
    let mut a = Assessment {
        conditions: Vec::new(),
        requeue: Some(WATCH_DEPLOYMENT),
        applied_generation: inputs.status.applied_generation,
        rolled_back_generation: inputs.status.rolled_back_generation,
        deployment_id: app.and_then(|a| a.deployments.first().cloned()),
    };
    let gen_text = generation.map_or_else(String::new, |g| format!(" of generation {g}"));
    a.conditions = match (step, outcome) {
        (_, Outcome::Rejected(message)) => {
            a.requeue = None;
            let message = format!("Marathon rejected the app: {message}");
            blocked(cond(ACCEPTED, false, "Invalid", message))
        }
        (_, Outcome::Locked(ids)) => three(
            false,
            true,
            false,
            "WaitingForDeployment",
            format!(
                "The app is locked by deployment {}; the spec{gen_text} is applied when it ends.",
                ids.join(", ")
            ),
        ),
        (Step::Put { why, .. }, Outcome::Deployed(d)) => {
            a.applied_generation = generation;
            a.deployment_id = Some(d.deployment_id.clone());
            let what = match why {
                Why::Create => "Creating the app",
                Why::Update => "Updating the app",
                Why::Restore(_) => "Restoring the app changed in Marathon",
                Why::Recreate => "Recreating the app deleted in Marathon",
            };
            three(
                false,
                true,
                false,
                "Deploying",
                format!("{what}: deployment {}.", d.deployment_id),
            )
        }
        (
            Step::RollBack {
                deployment,
                current,
            },
            Outcome::RolledBack(d),
        ) => {
            if *current {
                a.rolled_back_generation = generation;
            }
            a.deployment_id = Some(d.deployment_id.clone());
            three(
                false,
                false,
                true,
                "DeploymentTimedOut",
                format!(
                    "Deployment {deployment} ran longer than {:?} and was rolled back (deployment {}).{}",
                    inputs.timeout,
                    d.deployment_id,
                    failure_text(app)
                ),
            )
        }
        _ => settled(inputs, observed, &mut a),
    };
    a
}

/// Conditions when this pass wrote nothing.
fn settled(inputs: &Inputs, observed: &Observed, a: &mut Assessment) -> Vec<Desired> {
    if let Some(message) = rejected_for(inputs) {
        a.requeue = None;
        return blocked(cond(ACCEPTED, false, "Invalid", message));
    }
    let app = observed.app.as_ref();
    if held_after_rollback(inputs) {
        a.requeue = Some(RESYNC);
        return three(
            false,
            false,
            true,
            "DeploymentTimedOut",
            format!(
                "The deployment of generation {} timed out and was rolled back; change the spec to try again.{}",
                inputs.generation.unwrap_or_default(),
                failure_text(app)
            ),
        );
    }
    let Some(app) = app else {
        // Only reached when a write was planned but not made.
        return three(
            false,
            true,
            false,
            "Pending",
            "The app is not in Marathon yet.".into(),
        );
    };
    if !app.deployments.is_empty() {
        let ids = app.deployments.join(", ");
        if !differences(inputs.expected, &app.app).is_empty() {
            return three(
                false,
                true,
                false,
                "WaitingForDeployment",
                format!("The app is locked by deployment {ids}; the spec is applied when it ends."),
            );
        }
        if let Some(d) = overdue(inputs, observed) {
            return three(
                false,
                true,
                true,
                "DeploymentTimedOut",
                format!(
                    "Deployment {} has run longer than {:?}; rollbackOnTimeout is off.{}",
                    d.id,
                    inputs.timeout,
                    failure_text(Some(app))
                ),
            );
        }
        let (_, counts) = tasks_ready(inputs.expected, app);
        return three(
            false,
            true,
            false,
            "Deploying",
            format!("Deployment {ids} is running; {counts}"),
        );
    }
    a.requeue = Some(RESYNC);
    match tasks_ready(inputs.expected, app) {
        (true, counts) => three(true, false, false, "Running", counts),
        (false, counts) => three(
            false,
            false,
            false,
            "TasksNotReady",
            format!("{counts}{}", failure_text(Some(app))),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::conditions::merge;
    use serde_json::json;

    const NOW: &str = "2026-11-23T12:00:00Z";

    fn expected() -> Value {
        json!({"id": "/t/web", "cmd": "sleep 1", "instances": 2, "cpus": 0.1,
               "healthChecks": [{"protocol": "MESOS_TCP"}]})
    }

    /// Marathon's view of `def` with `healthy` healthy tasks and these deployments.
    fn app(def: Value, healthy: i32, deployments: &[&str]) -> AppInfo {
        let mut v = def;
        v["version"] = json!("2026-11-23T11:00:00.000Z");
        v["tasksRunning"] = json!(healthy);
        v["tasksHealthy"] = json!(healthy);
        v["deployments"] = json!(
            deployments
                .iter()
                .map(|d| json!({"id": d}))
                .collect::<Vec<_>>()
        );
        v["lastTaskFailure"] = json!({"message": "health check failed"});
        AppInfo::from_json(v)
    }

    fn deployment(id: &str, started: &str) -> Deployment {
        Deployment {
            id: id.into(),
            version: started.into(),
            affected_apps: vec!["/t/web".into()],
        }
    }

    fn status(applied: Option<i64>, rolled_back: Option<i64>) -> MarathonAppStatus {
        MarathonAppStatus {
            applied_generation: applied,
            rolled_back_generation: rolled_back,
            ..MarathonAppStatus::default()
        }
    }

    fn inputs<'a>(status: &'a MarathonAppStatus, expected: &'a Value, force: bool) -> Inputs<'a> {
        Inputs {
            generation: Some(3),
            status,
            expected,
            timeout: Duration::from_secs(600),
            rollback_on_timeout: true,
            force,
            now: NOW.parse().unwrap(),
        }
    }

    fn deployed(id: &str) -> Outcome {
        Outcome::Deployed(DeploymentRef {
            deployment_id: id.into(),
            version: None,
        })
    }

    fn reasons(a: &Assessment) -> Vec<(&str, bool, &str)> {
        a.conditions
            .iter()
            .map(|c| (c.type_, c.status, c.reason))
            .collect()
    }

    #[test]
    fn the_table() {
        let want = expected();
        let mut scaled = want.clone();
        scaled["instances"] = json!(5);
        let rejected = {
            let mut s = status(Some(2), None);
            s.conditions = merge(
                &[],
                &cond(
                    ACCEPTED,
                    false,
                    "Invalid",
                    "Marathon rejected the app: x".into(),
                ),
                Some(3),
                NOW.parse().unwrap(),
            );
            s
        };
        let fresh = status(None, None);
        let applied = status(Some(3), None);
        let older = status(Some(2), None);
        let held = status(Some(3), Some(3));
        let old_start = "2026-11-23T11:40:00.000Z";
        let new_start = "2026-11-23T11:59:00.000Z";
        struct Case<'a> {
            name: &'a str,
            status: &'a MarathonAppStatus,
            force: bool,
            observed: Observed,
            step: Step,
            outcome: Outcome,
            ready: bool,
            reason: &'a str,
            requeue: Option<Duration>,
        }
        let put = |why| Step::Put { force: false, why };
        let none = |app: Option<AppInfo>| Observed {
            app,
            deployments: vec![],
        };
        let cases = [
            Case {
                name: "absent, never applied: create",
                status: &fresh,
                force: false,
                observed: none(None),
                step: put(Why::Create),
                outcome: deployed("d1"),
                ready: false,
                reason: "Deploying",
                requeue: Some(WATCH_DEPLOYMENT),
            },
            Case {
                name: "unchanged with server defaults and healthy: no write, ready",
                status: &applied,
                force: false,
                observed: none(Some(app(
                    {
                        let mut v = want.clone();
                        v["mem"] = json!(128);
                        v["healthChecks"][0]["intervalSeconds"] = json!(60);
                        v
                    },
                    2,
                    &[],
                ))),
                step: Step::Hold,
                outcome: Outcome::None,
                ready: true,
                reason: "Running",
                requeue: Some(RESYNC),
            },
            Case {
                name: "unchanged, one task unhealthy: not ready, no write",
                status: &applied,
                force: false,
                observed: none(Some(app(want.clone(), 1, &[]))),
                step: Step::Hold,
                outcome: Outcome::None,
                ready: false,
                reason: "TasksNotReady",
                requeue: Some(RESYNC),
            },
            Case {
                name: "spec changed: update",
                status: &older,
                force: false,
                observed: none(Some(app(scaled.clone(), 5, &[]))),
                step: put(Why::Update),
                outcome: deployed("d2"),
                ready: false,
                reason: "Deploying",
                requeue: Some(WATCH_DEPLOYMENT),
            },
            Case {
                name: "changed in Marathon after applying: restore",
                status: &applied,
                force: false,
                observed: none(Some(app(scaled.clone(), 5, &[]))),
                step: put(Why::Restore(vec![
                    "/instances: want 2, Marathon has 5".into(),
                ])),
                outcome: deployed("d3"),
                ready: false,
                reason: "Deploying",
                requeue: Some(WATCH_DEPLOYMENT),
            },
            Case {
                name: "deleted in Marathon after applying: recreate",
                status: &applied,
                force: false,
                observed: none(None),
                step: put(Why::Recreate),
                outcome: deployed("d4"),
                ready: false,
                reason: "Deploying",
                requeue: Some(WATCH_DEPLOYMENT),
            },
            Case {
                name: "409 on the write: wait with the deployment id",
                status: &older,
                force: false,
                observed: none(Some(app(scaled.clone(), 5, &[]))),
                step: put(Why::Update),
                outcome: Outcome::Locked(vec!["d9".into()]),
                ready: false,
                reason: "WaitingForDeployment",
                requeue: Some(WATCH_DEPLOYMENT),
            },
            Case {
                name: "changed while a deployment runs: no write, wait",
                status: &older,
                force: false,
                observed: Observed {
                    app: Some(app(scaled.clone(), 2, &["d9"])),
                    deployments: vec![deployment("d9", new_start)],
                },
                step: Step::Hold,
                outcome: Outcome::None,
                ready: false,
                reason: "WaitingForDeployment",
                requeue: Some(WATCH_DEPLOYMENT),
            },
            Case {
                name: "changed while a deployment runs, force: put with force",
                status: &older,
                force: true,
                observed: Observed {
                    app: Some(app(scaled.clone(), 2, &["d9"])),
                    deployments: vec![deployment("d9", new_start)],
                },
                step: Step::Put {
                    force: true,
                    why: Why::Update,
                },
                outcome: deployed("d5"),
                ready: false,
                reason: "Deploying",
                requeue: Some(WATCH_DEPLOYMENT),
            },
            Case {
                name: "own deployment within the timeout: progressing, never ready",
                status: &applied,
                force: false,
                observed: Observed {
                    app: Some(app(want.clone(), 2, &["d1"])),
                    deployments: vec![deployment("d1", new_start)],
                },
                step: Step::Hold,
                outcome: Outcome::None,
                ready: false,
                reason: "Deploying",
                requeue: Some(WATCH_DEPLOYMENT),
            },
            Case {
                name: "own deployment past the timeout: roll back",
                status: &applied,
                force: false,
                observed: Observed {
                    app: Some(app(want.clone(), 0, &["d1"])),
                    deployments: vec![deployment("d1", old_start)],
                },
                step: Step::RollBack {
                    deployment: "d1".into(),
                    current: true,
                },
                outcome: Outcome::RolledBack(DeploymentRef {
                    deployment_id: "r1".into(),
                    version: None,
                }),
                ready: false,
                reason: "DeploymentTimedOut",
                requeue: Some(WATCH_DEPLOYMENT),
            },
            Case {
                name: "rolled back: hold, degraded, no write",
                status: &held,
                force: false,
                observed: none(Some(app(scaled.clone(), 5, &[]))),
                step: Step::Hold,
                outcome: Outcome::None,
                ready: false,
                reason: "DeploymentTimedOut",
                requeue: Some(RESYNC),
            },
            Case {
                name: "a rolled-back creation stays deleted",
                status: &held,
                force: false,
                observed: none(None),
                step: Step::Hold,
                outcome: Outcome::None,
                ready: false,
                reason: "DeploymentTimedOut",
                requeue: Some(RESYNC),
            },
            Case {
                name: "422: invalid, wait for a change",
                status: &older,
                force: false,
                observed: none(Some(app(scaled.clone(), 5, &[]))),
                step: put(Why::Update),
                outcome: Outcome::Rejected("Object is not valid: /cpus: too small".into()),
                ready: false,
                reason: "Invalid",
                requeue: None,
            },
            Case {
                name: "rejected for this generation: no retry",
                status: &rejected,
                force: false,
                observed: none(Some(app(scaled.clone(), 5, &[]))),
                step: Step::Hold,
                outcome: Outcome::None,
                ready: false,
                reason: "Invalid",
                requeue: None,
            },
        ];
        for c in cases {
            let i = inputs(c.status, &want, c.force);
            assert_eq!(plan(&i, &c.observed), c.step, "{}", c.name);
            let a = assess(&i, &c.observed, &c.step, &c.outcome);
            let r = reasons(&a);
            assert_eq!(r[1], (READY, c.ready, c.reason), "{}: {r:?}", c.name);
            assert_eq!(a.requeue, c.requeue, "{}", c.name);
            if c.reason == "Invalid" {
                assert_eq!(r[0], (ACCEPTED, false, "Invalid"), "{}", c.name);
            }
        }
    }

    #[test]
    fn bookkeeping_follows_the_writes() {
        let want = expected();
        let fresh = status(None, None);
        let i = inputs(&fresh, &want, false);
        let created = assess(
            &i,
            &Observed {
                app: None,
                deployments: vec![],
            },
            &Step::Put {
                force: false,
                why: Why::Create,
            },
            &deployed("d1"),
        );
        assert_eq!(created.applied_generation, Some(3));
        assert_eq!(created.deployment_id.as_deref(), Some("d1"));
        assert!(created.conditions[2].message.contains("deployment d1"));

        let applied = status(Some(3), None);
        let i = inputs(&applied, &want, false);
        let stuck = Observed {
            app: Some(app(want.clone(), 0, &["d1"])),
            deployments: vec![deployment("d1", "2026-11-23T11:00:00.000Z")],
        };
        let step = plan(&i, &stuck);
        let rolled = assess(
            &i,
            &stuck,
            &step,
            &Outcome::RolledBack(DeploymentRef {
                deployment_id: "r1".into(),
                version: None,
            }),
        );
        assert_eq!(rolled.rolled_back_generation, Some(3));
        let degraded = &rolled.conditions[3];
        assert!(
            degraded.status
                && degraded
                    .message
                    .contains("Last task failure: health check failed"),
            "{degraded:?}"
        );

        // An old deployment stuck under a newer spec is rolled back, but the new spec is not held.
        let older = status(Some(2), None);
        let i = inputs(&older, &want, false);
        let mut old_def = want.clone();
        old_def["cmd"] = json!("old");
        let stuck_old = Observed {
            app: Some(app(old_def, 0, &["d0"])),
            deployments: vec![deployment("d0", "2026-11-23T11:00:00.000Z")],
        };
        let step = plan(&i, &stuck_old);
        assert_eq!(
            step,
            Step::RollBack {
                deployment: "d0".into(),
                current: false
            }
        );
        let rolled = assess(
            &i,
            &stuck_old,
            &step,
            &Outcome::RolledBack(DeploymentRef {
                deployment_id: "r2".into(),
                version: None,
            }),
        );
        assert_eq!(rolled.rolled_back_generation, None);

        // Without rollbackOnTimeout the deployment is left alone but reported.
        let mut i = inputs(&applied, &want, false);
        i.rollback_on_timeout = false;
        assert_eq!(plan(&i, &stuck), Step::Hold);
        let a = assess(&i, &stuck, &Step::Hold, &Outcome::None);
        assert_eq!(reasons(&a)[3], (DEGRADED, true, "DeploymentTimedOut"));
    }
}
