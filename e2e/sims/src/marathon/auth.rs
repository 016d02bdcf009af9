//! HTTP basic authentication (`api/HttpModule.scala`: a Jetty BASIC constraint on `/*`
//! with `--http_realm`): every path, on both connectors, checked before the leader
//! proxy, so a standby refuses bad credentials itself.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use super::Marathon;
use super::config::Credentials;

pub(super) async fn basic_auth(
    State(m): State<Arc<Marathon>>,
    req: Request,
    next: Next,
) -> Response {
    match &m.cfg.credentials {
        Some(expected) if presented(req.headers()).as_ref() != Some(expected) => {
            challenge(&m.cfg.realm)
        }
        _ => next.run(req).await,
    }
}

/// Jetty's `BasicAuthenticator`: `<scheme> <base64>` with the scheme `basic` in any
/// case; the decoded text (ISO-8859-1) splits at its first colon, after a non-empty user.
fn presented(headers: &HeaderMap) -> Option<Credentials> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let value: String = value.iter().map(|&b| char::from(b)).collect();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text: String = decoded.iter().map(|&b| char::from(b)).collect();
    let (user, password) = text.split_once(':').filter(|(user, _)| !user.is_empty())?;
    Some(Credentials {
        user: user.to_string(),
        password: password.to_string(),
    })
}

/// Jetty's answer: 401, the challenge, and its HTML error page.
fn challenge(realm: &str) -> Response {
    let challenge = HeaderValue::from_str(&format!("basic realm=\"{realm}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("basic"));
    let page = "<html>\n<head>\n<meta http-equiv=\"Content-Type\" content=\"text/html;charset=iso-8859-1\"/>\n\
        <title>Error 401 Unauthorized</title>\n</head>\n<body><h2>HTTP ERROR 401</h2>\n\
        <p>Problem accessing the API. Reason:\n<pre>    Unauthorized</pre></p>\n</body>\n</html>\n";
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::WWW_AUTHENTICATE, challenge),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html;charset=iso-8859-1"),
            ),
        ],
        page,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    fn creds(user: &str, password: &str) -> Option<Credentials> {
        Some(Credentials {
            user: user.into(),
            password: password.into(),
        })
    }

    #[test]
    fn jetty_reads_the_header_split_at_the_first_colon() {
        // "ops:s3:cret"
        assert_eq!(
            presented(&header("Basic b3BzOnMzOmNyZXQ=")),
            creds("ops", "s3:cret")
        );
        assert_eq!(
            presented(&header("BASIC b3BzOnMzOmNyZXQ=")),
            creds("ops", "s3:cret")
        );
        // ":pw" has an empty user; "Bearer" is another scheme; no space, no credentials.
        assert_eq!(presented(&header("Basic OnB3")), None);
        assert_eq!(presented(&header("Bearer b3BzOnMzOmNyZXQ=")), None);
        assert_eq!(presented(&header("Basicb3BzOnMzOmNyZXQ=")), None);
        assert_eq!(presented(&HeaderMap::new()), None);
    }

    #[test]
    fn marathon_splits_the_flag_at_the_last_colon() {
        assert_eq!(Credentials::parse("ops:s3cret"), creds("ops", "s3cret"));
        assert_eq!(Credentials::parse("a:b:c"), creds("a:b", "c"));
        assert_eq!(Credentials::parse("a:b:"), creds("a", "b:"));
        for malformed in ["ops", "ops:", ":pw", ":", "", "ops:pw\n"] {
            assert_eq!(Credentials::parse(malformed), None, "{malformed:?}");
        }
    }
}
