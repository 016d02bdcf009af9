//! Errors of the reconcile pipeline, one enum per stage. Each variant has a short, stable
//! category used as the `category` label of `mesos_operator_reconcile_errors_total` and in
//! Events; the category never contains variable text.

use std::time::Duration;

/// Writing status (the last stage).
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("patching status: {0}")]
    Patch(#[source] kube::Error),
    #[error("serialising status: {0}")]
    Serialize(#[source] serde_json::Error),
}

/// Anything that ends a reconcile run early. Invalid specs are not errors: they are reported as
/// an `Accepted=False` condition and wait for a spec change.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Status(#[from] StatusError),
    #[error("object has no {0}")]
    MissingField(&'static str),
    #[error(transparent)]
    Observe(#[from] super::cluster::observe::ObserveError),
    #[error(transparent)]
    Apply(#[from] super::cluster::execute::ApplyError),
    #[error("{what}: {source}")]
    Kube { what: String, source: kube::Error },
    #[error(transparent)]
    Marathon(#[from] crate::marathon::MarathonError),
    #[error(transparent)]
    AgentPool(#[from] super::agent_pool::apply::AgentPoolError),
    #[error(transparent)]
    MarathonAccess(#[from] super::marathon_access::AccessError),
    /// This replica's leader Lease lapsed: it starts no pass (the process is exiting).
    #[error("not acting: {0}")]
    NotLeading(#[from] crate::leader::NotLeading),
}

impl ReconcileError {
    /// The stable category of this error.
    pub fn category(&self) -> &'static str {
        match self {
            ReconcileError::Status(StatusError::Patch(e)) if is_conflict(e) => "status-conflict",
            ReconcileError::Status(StatusError::Patch(_)) => "status-patch",
            ReconcileError::Status(StatusError::Serialize(_)) => "status-serialize",
            ReconcileError::MissingField(_) => "malformed-object",
            ReconcileError::Observe(e) => e.category(),
            ReconcileError::Apply(e) => e.category(),
            ReconcileError::Kube { .. } => "kube",
            ReconcileError::Marathon(e) => e.category(),
            ReconcileError::AgentPool(e) => e.category(),
            ReconcileError::MarathonAccess(e) => e.category(),
            ReconcileError::NotLeading(_) => "not-leading",
        }
    }

    /// Permanent errors cannot be fixed by retrying; they wait for the object to change.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            ReconcileError::Status(StatusError::Serialize(_)) | ReconcileError::MissingField(_)
        )
    }
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// Per-object exponential back-off: 1 s, 2 s, 4 s, ... capped at 5 minutes.
pub fn backoff(failures: u32) -> Duration {
    const BASE: Duration = Duration::from_secs(1);
    const CAP: Duration = Duration::from_secs(300);
    BASE.saturating_mul(1u32.checked_shl(failures.min(16)).unwrap_or(u32::MAX))
        .min(CAP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_caps() {
        let table = [
            (0, 1),
            (1, 2),
            (2, 4),
            (5, 32),
            (8, 256),
            (9, 300),
            (40, 300),
        ];
        for (failures, secs) in table {
            assert_eq!(
                backoff(failures),
                Duration::from_secs(secs),
                "after {failures} failures"
            );
        }
    }

    #[test]
    fn categories_are_stable_words() {
        let e = ReconcileError::MissingField("metadata.namespace");
        assert_eq!(e.category(), "malformed-object");
        assert!(e.is_permanent());
        let conflict = ReconcileError::Status(StatusError::Patch(kube::Error::Api(
            kube::core::Status::failure("conflict", "Conflict")
                .with_code(409)
                .boxed(),
        )));
        assert_eq!(conflict.category(), "status-conflict");
        assert!(!conflict.is_permanent());
    }
}
