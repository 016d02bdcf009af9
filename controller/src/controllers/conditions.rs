//! kstatus-style conditions (`Accepted`, `Ready`, `Available`, `Progressing`, `Degraded`), each
//! carrying the generation it describes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// The condition types this operator writes.
pub const ACCEPTED: &str = "Accepted";

/// A condition the reconciler wants; [`merge`] turns it into a `Condition`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    pub type_: &'static str,
    pub status: bool,
    pub reason: &'static str,
    pub message: String,
}

/// Sets `want` in `conditions`, keeping `lastTransitionTime` when the status did not change so
/// that an unchanged condition compares equal and causes no status write.
pub fn merge(
    conditions: &[Condition],
    want: &Desired,
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    let status = if want.status { "True" } else { "False" };
    let previous = conditions.iter().find(|c| c.type_ == want.type_);
    let last_transition_time = match previous {
        Some(p) if p.status == status => p.last_transition_time.clone(),
        _ => Time(now),
    };
    let next = Condition {
        type_: want.type_.to_string(),
        status: status.to_string(),
        reason: want.reason.to_string(),
        message: want.message.clone(),
        observed_generation: generation,
        last_transition_time,
    };
    let mut out: Vec<Condition> = conditions
        .iter()
        .filter(|c| c.type_ != want.type_)
        .cloned()
        .collect();
    out.push(next);
    out.sort_by(|a, b| a.type_.cmp(&b.type_));
    out
}

/// The condition of one type, if present.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted(status: bool, reason: &'static str) -> Desired {
        Desired {
            type_: ACCEPTED,
            status,
            reason,
            message: "m".into(),
        }
    }

    #[test]
    fn keeps_transition_time_while_status_holds_and_moves_it_on_change() {
        let t0: Timestamp = "2026-11-23T09:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
        let first = merge(&[], &accepted(true, "Valid"), Some(1), t0);
        let same = merge(&first, &accepted(true, "Valid"), Some(1), t1);
        assert_eq!(first, same, "an unchanged condition must compare equal");
        let bumped = merge(&first, &accepted(true, "Valid"), Some(2), t1);
        assert_eq!(bumped[0].last_transition_time, Time(t0));
        assert_eq!(bumped[0].observed_generation, Some(2));
        let flipped = merge(&bumped, &accepted(false, "Invalid"), Some(3), t1);
        assert_eq!(flipped[0].last_transition_time, Time(t1));
        assert_eq!(flipped[0].status, "False");
        assert_eq!(flipped.len(), 1);
    }

    #[test]
    fn keeps_other_types_sorted() {
        let t0: Timestamp = "2026-11-23T09:00:00Z".parse().unwrap();
        let ready = Desired {
            type_: "Ready",
            status: false,
            reason: "Pending",
            message: String::new(),
        };
        let both = merge(
            &merge(&[], &ready, None, t0),
            &accepted(true, "Valid"),
            None,
            t0,
        );
        let types: Vec<_> = both.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["Accepted", "Ready"]);
    }
}
