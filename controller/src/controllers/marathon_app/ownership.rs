//! Which MarathonApp owns a Marathon app (pure).
//!
//! Every definition the operator writes carries the label [`OWNER_LABEL`] naming the resource
//! (`<namespace>/<name>`). A pass acts on an app only when it is this resource's: an app labelled
//! for another resource is never written or deleted (two resources naming one `app.id` do not
//! fight), and an app that exists without the label was made by someone else and is taken over
//! only with `spec.adoptExisting`. Apps this operator wrote before the label existed are
//! recognised by the resource's own record of a write (`status.appliedGeneration`) and get the
//! label with their next write; the label is left out of the drift comparison, so an upgrade
//! redeploys nothing.

use serde_json::Value;

use crate::crd::MarathonAppStatus;
use crate::marathon::AppInfo;

/// The label naming the MarathonApp (`<namespace>/<name>`) that wrote a Marathon app.
pub const OWNER_LABEL: &str = "mesos.operator.dev/owner";

/// How a Marathon app stands to one MarathonApp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// No such app in Marathon: this resource may create it.
    Absent,
    /// This resource's app (by its label, its own earlier write, or `adoptExisting`).
    Ours,
    /// Labelled for another MarathonApp.
    OwnedBy(String),
    /// Made outside this operator; `adoptExisting` is not set.
    Foreign,
}

impl Claim {
    /// Whether this resource may write (or delete) the app.
    pub fn writable(&self) -> bool {
        matches!(self, Claim::Absent | Claim::Ours)
    }
}

/// `<namespace>/<name>`: the value of [`OWNER_LABEL`] for one resource.
pub fn owner(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// How the observed app stands to the resource `me`.
pub fn claim(app: Option<&AppInfo>, me: &str, status: &MarathonAppStatus, adopt: bool) -> Claim {
    let Some(app) = app else {
        return Claim::Absent;
    };
    match label(&app.app) {
        Some(o) if o == me => Claim::Ours,
        Some(other) => Claim::OwnedBy(other.to_string()),
        None if adopt || status.applied_generation.is_some() => Claim::Ours,
        None => Claim::Foreign,
    }
}

fn label(app: &Value) -> Option<&str> {
    app.get("labels")?.get(OWNER_LABEL)?.as_str()
}

/// The definition to write: `body` with the owner label added.
pub fn labelled(body: &Value, me: &str) -> Value {
    let mut body = body.clone();
    if let Some(obj) = body.as_object_mut() {
        let labels = obj
            .entry("labels")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(labels) = labels.as_object_mut() {
            labels.insert(OWNER_LABEL.into(), Value::String(me.into()));
        }
    }
    body
}

/// Marathon's app without the owner label, for the drift comparison (the spec never names it).
pub fn unlabelled(mut app: AppInfo) -> AppInfo {
    if let Some(labels) = app.app.get_mut("labels").and_then(Value::as_object_mut) {
        labels.remove(OWNER_LABEL);
    }
    app
}

/// The condition reason and message for an app this resource may not touch.
pub fn refusal(claim: &Claim, id: &str) -> Option<(&'static str, String)> {
    match claim {
        Claim::OwnedBy(other) => Some((
            "AppOwnedByAnother",
            format!(
                "Marathon app {id} belongs to MarathonApp {other} (label {OWNER_LABEL}); this resource leaves it alone. Give one of them another spec.app.id."
            ),
        )),
        Claim::Foreign => Some((
            "AppExists",
            format!(
                "Marathon already has an app {id} that no MarathonApp created; it is left untouched. Set spec.adoptExisting: true to manage it (it is then overwritten with this spec, and deleted with this resource under deletionPolicy Delete)."
            ),
        )),
        Claim::Absent | Claim::Ours => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn app(labels: Value) -> AppInfo {
        AppInfo::from_json(json!({"id": "/t/web", "labels": labels}))
    }

    #[test]
    fn claims() {
        let fresh = MarathonAppStatus::default();
        let written = MarathonAppStatus {
            applied_generation: Some(1),
            ..Default::default()
        };
        let mine = app(json!({OWNER_LABEL: "t/web"}));
        let theirs = app(json!({OWNER_LABEL: "t/other"}));
        let bare = app(json!({"HAPROXY_GROUP": "external"}));
        let table = [
            (None, &fresh, false, Claim::Absent),
            (Some(&mine), &fresh, false, Claim::Ours),
            (
                Some(&theirs),
                &written,
                true,
                Claim::OwnedBy("t/other".into()),
            ),
            (Some(&bare), &fresh, false, Claim::Foreign),
            (Some(&bare), &fresh, true, Claim::Ours),
            (Some(&bare), &written, false, Claim::Ours),
        ];
        for (i, (observed, status, adopt, want)) in table.into_iter().enumerate() {
            assert_eq!(claim(observed, "t/web", status, adopt), want, "row {i}");
        }
    }

    #[test]
    fn the_label_is_written_and_left_out_of_the_comparison() {
        let body = labelled(&json!({"id": "/t/web", "labels": {"a": "1"}}), "t/web");
        assert_eq!(body["labels"], json!({"a": "1", OWNER_LABEL: "t/web"}));
        let bare = labelled(&json!({"id": "/t/web"}), "t/web");
        assert_eq!(bare["labels"], json!({OWNER_LABEL: "t/web"}));
        let seen = unlabelled(AppInfo::from_json(body));
        assert_eq!(seen.app["labels"], json!({"a": "1"}));
    }

    #[test]
    fn only_foreign_and_other_owners_are_refused() {
        assert!(refusal(&Claim::Ours, "/x").is_none());
        assert!(refusal(&Claim::Absent, "/x").is_none());
        let (reason, message) = refusal(&Claim::OwnedBy("a/b".into()), "/x").unwrap();
        assert_eq!(reason, "AppOwnedByAnother");
        assert!(message.contains("a/b"), "{message}");
        let (reason, message) = refusal(&Claim::Foreign, "/x").unwrap();
        assert_eq!(reason, "AppExists");
        assert!(message.contains("spec.adoptExisting"), "{message}");
    }
}
