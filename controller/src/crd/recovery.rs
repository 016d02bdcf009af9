//! The acknowledgements of a data loss in a MesosCluster's spec, and their audit trail in its
//! status (docs/operations.md, "Majority data loss").

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Acknowledges one loss of a quorum's data and names the surviving member to rebuild from.
/// It acts only while `lost` lists exactly the members the `QuorumDataLost` condition names;
/// those are fenced for good and names are never reused, so the field left in place can never
/// acknowledge a later loss.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecoverFrom {
    /// The surviving member (e.g. `prod-zookeeper-3`) whose data the ensemble continues with.
    /// Whatever only the lost members held is gone.
    #[schemars(length(min = 1, max = 253))]
    pub member: String,
    /// Exactly the members the `QuorumDataLost` condition names as lost.
    #[schemars(length(min = 1, max = 9), inner(length(min = 1, max = 253)))]
    pub lost: Vec<String>,
}

impl RecoverFrom {
    /// The planner's copy.
    pub fn target(&self) -> Box<crate::quorum::RecoverFrom> {
        Box::new(crate::quorum::RecoverFrom {
            member: self.member.clone(),
            lost: self.lost.clone(),
        })
    }
}

/// One consumed acknowledgement of a data loss.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Recovery {
    pub role: crate::quorum::Role,
    /// `LogWipe` (a fresh replicated log) or `RecoverFrom` (rebuilt from `member`).
    pub kind: String,
    /// The survivor the ensemble was rebuilt from (`RecoverFrom`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// The members whose data was given up (`RecoverFrom`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost: Vec<String>,
    /// The spec generation that carried the acknowledgement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// When the operator acted on it (RFC 3339).
    pub time: String,
    /// `LogWipe`: the operator has since seen `acknowledgeLogWipe` false, so setting it true
    /// again acknowledges another fresh log.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rearmed: bool,
}

/// `Recovery::kind` of a fresh replicated log.
pub const RECOVERY_LOG_WIPE: &str = "LogWipe";
/// `Recovery::kind` of a rebuild from a named survivor.
pub const RECOVERY_FROM: &str = "RecoverFrom";
