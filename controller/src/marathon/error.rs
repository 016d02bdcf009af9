//! What can go wrong talking to Marathon, typed by what the caller does about it: 404 and 409 are
//! answers to act on, 422 is the user's to fix, 5xx and connection errors are worth a retry.

use serde::Deserialize;

/// One `details[]` entry of a 422 answer: a JSON path and its messages.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct FieldError {
    pub path: String,
    #[serde(default)]
    pub errors: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MarathonError {
    /// 404: the app (or deployment) does not exist.
    #[error("not found: {message}")]
    NotFound { message: String },
    /// 409 "App is locked by one or more deployments": not a failure, wait for them.
    #[error("locked by deployments {deployments:?}")]
    Locked { deployments: Vec<String> },
    /// 409 for anything else (e.g. "already exists").
    #[error("conflict: {message}")]
    Conflict { message: String },
    /// 422 (or 400 bad JSON): the definition is wrong; retrying cannot help.
    #[error("{}", invalid_text(message, details))]
    Invalid {
        message: String,
        details: Vec<FieldError>,
    },
    /// 401/403: the operator's credentials are missing or wrong (`--http_credentials`).
    #[error("not authorized ({status}){}", challenge_text(challenge))]
    Unauthorized {
        status: u16,
        /// The `WWW-Authenticate` challenge, e.g. `basic realm="Mesosphere"`.
        challenge: Option<String>,
    },
    /// Another 4xx, e.g. too many deployments.
    #[error("rejected with {status}: {message}")]
    Rejected { status: u16, message: String },
    /// 5xx: Marathon is failing over or timing out.
    #[error("server error {status}: {message}")]
    Server { status: u16, message: String },
    #[error("asking {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("decoding the answer to {url}: {message}")]
    Decode { url: String, message: String },
    #[error("no Marathon server to ask")]
    NoServer,
}

fn challenge_text(challenge: &Option<String>) -> String {
    challenge
        .as_ref()
        .map(|c| format!(", challenge: {c}"))
        .unwrap_or_default()
}

fn invalid_text(message: &str, details: &[FieldError]) -> String {
    let fields: Vec<String> = details
        .iter()
        .map(|d| format!("{}: {}", d.path, d.errors.join(", ")))
        .collect();
    if fields.is_empty() {
        message.to_string()
    } else {
        format!("{message}: {}", fields.join("; "))
    }
}

impl MarathonError {
    /// A stable word for metrics and logs.
    pub fn category(&self) -> &'static str {
        match self {
            MarathonError::NotFound { .. } => "marathon-not-found",
            MarathonError::Locked { .. } => "marathon-locked",
            MarathonError::Conflict { .. } => "marathon-conflict",
            MarathonError::Invalid { .. } => "marathon-invalid",
            MarathonError::Unauthorized { .. } => "marathon-unauthorized",
            MarathonError::Rejected { .. } => "marathon-rejected",
            MarathonError::Server { .. } => "marathon-server-error",
            MarathonError::Unreachable { source, .. } if source.is_timeout() => "marathon-timeout",
            MarathonError::Unreachable { .. } => "marathon-unreachable",
            MarathonError::Decode { .. } => "marathon-decode",
            MarathonError::NoServer => "marathon-no-server",
        }
    }

    /// Whether the same request may succeed later: server errors and lost connections only.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            MarathonError::Server { .. } | MarathonError::Unreachable { .. }
        )
    }

    /// The error a non-2xx answer stands for. `body` is Marathon's JSON error body, if any.
    pub fn from_answer(status: u16, body: &str) -> Self {
        #[derive(Deserialize, Default)]
        struct Body {
            #[serde(default)]
            message: String,
            #[serde(default)]
            details: Option<serde_json::Value>,
            #[serde(default)]
            deployments: Vec<Id>,
        }
        #[derive(Deserialize)]
        struct Id {
            id: String,
        }
        let parsed: Body = serde_json::from_str(body).unwrap_or_else(|_| Body {
            message: body.chars().take(500).collect(),
            ..Body::default()
        });
        let message = parsed.message;
        match status {
            404 => MarathonError::NotFound { message },
            409 if !parsed.deployments.is_empty() => MarathonError::Locked {
                deployments: parsed.deployments.into_iter().map(|d| d.id).collect(),
            },
            409 => MarathonError::Conflict { message },
            400 | 422 => MarathonError::Invalid {
                message,
                // `details` is a list of {path, errors} on 422; 400 may carry anything.
                details: parsed
                    .details
                    .and_then(|d| serde_json::from_value(d).ok())
                    .unwrap_or_default(),
            },
            401 | 403 => MarathonError::Unauthorized {
                status,
                challenge: None,
            },
            500.. => MarathonError::Server { status, message },
            _ => MarathonError::Rejected { status, message },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_become_typed_errors() {
        let locked = r#"{"message":"App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/97c1'.","deployments":[{"id":"97c1"}]}"#;
        match MarathonError::from_answer(409, locked) {
            MarathonError::Locked { deployments } => assert_eq!(deployments, ["97c1"]),
            other => panic!("{other:?}"),
        }
        let exists = r#"{"message":"An app with id [/x] already exists."}"#;
        assert!(matches!(
            MarathonError::from_answer(409, exists),
            MarathonError::Conflict { .. }
        ));
        let invalid = r#"{"message":"Object is not valid","details":[{"path":"/upgradeStrategy/minimumHealthCapacity","errors":["is greater than 1"]},{"path":"/cpus","errors":["a","b"]}]}"#;
        let e = MarathonError::from_answer(422, invalid);
        assert_eq!(
            e.to_string(),
            "Object is not valid: /upgradeStrategy/minimumHealthCapacity: is greater than 1; /cpus: a, b"
        );
        assert!(!e.is_retryable());
        let e = MarathonError::from_answer(502, "Could not determine the current leader");
        assert!(
            matches!(&e, MarathonError::Server { status: 502, message } if message.contains("leader"))
        );
        assert!(e.is_retryable());
        assert_eq!(
            MarathonError::from_answer(404, r#"{"message":"App '/x' does not exist"}"#).category(),
            "marathon-not-found"
        );
        assert!(matches!(
            MarathonError::from_answer(403, "{}"),
            MarathonError::Unauthorized { status: 403, .. }
        ));
        assert!(matches!(
            MarathonError::from_answer(429, "{}"),
            MarathonError::Rejected { status: 429, .. }
        ));
    }
}
