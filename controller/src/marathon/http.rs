//! [`Marathon`] over HTTP. Any Marathon server answers (a standby proxies to the leader), but the
//! leader is asked first so that a request does not take the extra hop or fail while a standby
//! has lost track of it. Connection errors and 5xx answers are retried with back-off on the next
//! server; every other answer is final.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::metrics::CallMetrics;
use super::{AppInfo, Deployment, DeploymentRef, Marathon, MarathonError};

/// One Marathon server: its host name (the Pod name, the first label of what `/v2/leader`
/// reports) and its base URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    pub name: String,
    pub url: String,
}

/// Timeouts and retries.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Per request.
    pub timeout: Duration,
    /// Tries of one call, the first included.
    pub attempts: u32,
    /// Back-off before the second try; doubles after each failure.
    pub backoff: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            attempts: 3,
            backoff: Duration::from_millis(250),
        }
    }
}

/// HTTP basic credentials (`--http_credentials`). The password never reaches a log: `Debug`
/// leaves it out, and there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    password: String,
}

impl Credentials {
    pub fn new(username: String, password: String) -> Self {
        Self { username, password }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

pub struct HttpMarathon {
    http: reqwest::Client,
    /// Leader first once [`HttpMarathon::discover_leader`] found it.
    servers: Vec<Server>,
    credentials: Option<Credentials>,
    limits: Limits,
    metrics: CallMetrics,
}

/// An app id as a URL path: `/a/b` stays `/a/b` (ids are restricted to `[a-z0-9.-/]`).
fn app_path(id: &str) -> String {
    format!("/v2/apps/{}", id.trim_start_matches('/'))
}

impl HttpMarathon {
    pub fn new(
        http: reqwest::Client,
        servers: Vec<Server>,
        limits: Limits,
        metrics: CallMetrics,
    ) -> Self {
        Self {
            http,
            servers,
            credentials: None,
            limits,
            metrics,
        }
    }

    /// Authenticates every request with `credentials`.
    pub fn with_credentials(mut self, credentials: Option<Credentials>) -> Self {
        self.credentials = credentials;
        self
    }

    /// The leading server's name (the first label of the host `/v2/leader` reports), as the
    /// first server that answers knows it.
    pub async fn leader(&self) -> Option<String> {
        for server in &self.servers {
            if let Some(leader) = self.ask_leader(server).await {
                let host = leader.rsplit_once(':').map_or(leader.as_str(), |(h, _)| h);
                return host.split('.').next().map(String::from);
            }
        }
        None
    }

    /// Moves the leader to the front. Without an answer the order stays (standbys proxy to
    /// the leader anyway).
    pub async fn discover_leader(mut self) -> Self {
        if let Some(leader) = self.leader().await
            && let Some(i) = self.servers.iter().position(|s| s.name == leader)
        {
            self.servers[..=i].rotate_right(1);
        }
        self
    }

    fn request(&self, method: Method, url: &str) -> reqwest::RequestBuilder {
        let request = self
            .http
            .request(method, url)
            .timeout(self.limits.timeout)
            .header("Accept", "application/json");
        match &self.credentials {
            Some(c) => request.basic_auth(&c.username, Some(&c.password)),
            None => request,
        }
    }

    /// `host:port` of the leader as `server` knows it; `None` when it does not say.
    async fn ask_leader(&self, server: &Server) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Leader {
            leader: String,
        }
        let started = Instant::now();
        let response = self
            .request(Method::GET, &format!("{}/v2/leader", server.url))
            .send()
            .await;
        let code = response.as_ref().ok().map(|r| r.status().as_u16());
        self.metrics
            .observe("GET /v2/leader", code, started.elapsed());
        let response = response.ok().filter(|r| r.status().is_success())?;
        response.json::<Leader>().await.ok().map(|l| l.leader)
    }

    pub fn servers(&self) -> &[Server] {
        &self.servers
    }

    /// One call with retries; returns the final status and body.
    async fn call(
        &self,
        method: Method,
        endpoint: &'static str,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<(u16, String), MarathonError> {
        if self.servers.is_empty() {
            return Err(MarathonError::NoServer);
        }
        let mut backoff = self.limits.backoff;
        let mut attempt = 0;
        loop {
            let server = &self.servers[attempt as usize % self.servers.len()];
            let url = format!("{}{path_and_query}", server.url);
            let mut request = self.request(method.clone(), &url);
            if let Some(body) = body {
                request = request.json(body);
            }
            let started = Instant::now();
            let result = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let challenge = response
                        .headers()
                        .get(reqwest::header::WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .map(String::from);
                    match response.text().await {
                        Ok(text) => Ok((status, text, challenge)),
                        Err(source) => Err(MarathonError::Unreachable { url, source }),
                    }
                }
                Err(source) => Err(MarathonError::Unreachable { url, source }),
            };
            self.metrics.observe(
                endpoint,
                result.as_ref().ok().map(|(s, _, _)| *s),
                started.elapsed(),
            );
            let error = match result {
                // Every server shares the credentials: another one would refuse them too.
                Ok((status @ (401 | 403), _, challenge)) => {
                    return Err(MarathonError::Unauthorized { status, challenge });
                }
                Ok((status, text, _)) if status < 500 => return Ok((status, text)),
                Ok((status, text, _)) => MarathonError::from_answer(status, &text),
                Err(e) => e,
            };
            attempt += 1;
            if attempt >= self.limits.attempts {
                return Err(error);
            }
            tracing::debug!(endpoint, %error, retry_in = ?backoff, "Marathon call failed; retrying");
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
        }
    }

    /// A call whose 2xx answer is JSON of type `T`; any other answer is the typed error.
    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        endpoint: &'static str,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<T, MarathonError> {
        let (status, text) = self.call(method, endpoint, path_and_query, body).await?;
        if !(200..300).contains(&status) {
            return Err(MarathonError::from_answer(status, &text));
        }
        serde_json::from_str(&text).map_err(|e| MarathonError::Decode {
            url: path_and_query.to_string(),
            message: e.to_string(),
        })
    }
}

/// `Ok(None)` for a 404, so that "absent" is an answer rather than an error.
fn absent_is_none<T>(result: Result<T, MarathonError>) -> Result<Option<T>, MarathonError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(MarathonError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

impl Marathon for HttpMarathon {
    async fn app(&self, id: &str) -> Result<Option<AppInfo>, MarathonError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            app: Value,
        }
        let answer = self
            .json::<Answer>(Method::GET, "GET /v2/apps/{id}", &app_path(id), None)
            .await;
        Ok(absent_is_none(answer)?.map(|a| AppInfo::from_json(a.app)))
    }

    async fn put_app(
        &self,
        id: &str,
        definition: &Value,
        force: bool,
    ) -> Result<DeploymentRef, MarathonError> {
        let path = format!("{}?partialUpdate=false&force={force}", app_path(id));
        self.json(Method::PUT, "PUT /v2/apps/{id}", &path, Some(definition))
            .await
    }

    async fn delete_app(&self, id: &str) -> Result<Option<DeploymentRef>, MarathonError> {
        absent_is_none(
            self.json(Method::DELETE, "DELETE /v2/apps/{id}", &app_path(id), None)
                .await,
        )
    }

    async fn deployments(&self) -> Result<Vec<Deployment>, MarathonError> {
        self.json(Method::GET, "GET /v2/deployments", "/v2/deployments", None)
            .await
    }

    async fn roll_back(&self, deployment: &str) -> Result<DeploymentRef, MarathonError> {
        self.json(
            Method::DELETE,
            "DELETE /v2/deployments/{id}",
            &format!("/v2/deployments/{deployment}"),
            None,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use axum::Router;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use axum::routing::get;
    use serde_json::json;

    use super::*;
    use crate::tls::plain_client;

    /// Serves `router` on a loopback port; returns its base URL.
    async fn serve(router: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        format!("http://{addr}")
    }

    fn fast() -> Limits {
        Limits {
            timeout: Duration::from_secs(2),
            attempts: 3,
            backoff: Duration::from_millis(10),
        }
    }

    /// A Marathon whose first app read fails with 502; `leads` decides its `/v2/leader` answer.
    fn marathon(hits: Arc<AtomicU32>, leads: bool) -> Router {
        let leader = move || async move {
            if leads {
                axum::Json(json!({"leader": "m-1.m.ns.svc.cluster.local:8080"})).into_response()
            } else {
                (
                    StatusCode::NOT_FOUND,
                    axum::Json(json!({"message": "There is no leader"})),
                )
                    .into_response()
            }
        };
        let app = move || {
            let n = hits.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    (
                        StatusCode::BAD_GATEWAY,
                        "Could not determine the current leader",
                    )
                        .into_response()
                } else {
                    axum::Json(
                        json!({"app": {"id": "/t/web", "tasksRunning": 2, "version": "v1",
                        "deployments": [{"id": "d1"}]}}),
                    )
                    .into_response()
                }
            }
        };
        let locked = || async {
            let body = json!({"message": "App is locked by one or more deployments.", "deployments": [{"id": "d1"}]});
            (StatusCode::CONFLICT, axum::Json(body))
        };
        let gone = || async {
            let body = json!({"message": "App '/t/web' does not exist"});
            (StatusCode::NOT_FOUND, axum::Json(body))
        };
        Router::new()
            .route("/v2/leader", get(leader))
            .route("/v2/apps/{*id}", get(app).put(locked).delete(gone))
    }

    #[tokio::test]
    async fn leader_first_retries_5xx_and_types_answers() {
        let hits = Arc::new(AtomicU32::new(0));
        let leader = serve(marathon(hits.clone(), true)).await;
        let standby = serve(marathon(hits.clone(), false)).await;
        let metrics = CallMetrics::new();
        let servers = vec![
            Server {
                name: "m-0".into(),
                url: standby,
            },
            Server {
                name: "m-1".into(),
                url: leader.clone(),
            },
        ];
        let m = HttpMarathon::new(plain_client(), servers, fast(), metrics.clone())
            .discover_leader()
            .await;
        assert_eq!(m.servers()[0].url, leader, "the leader is asked first");

        let app = m.app("/t/web").await.unwrap().expect("present");
        assert_eq!(
            (app.tasks_running, app.deployments.clone()),
            (2, vec!["d1".to_string()])
        );
        assert_eq!(hits.load(Ordering::SeqCst), 2, "one retry after the 502");
        assert_eq!(metrics.count("GET /v2/apps/{id}", "502"), 1);
        assert_eq!(metrics.count("GET /v2/apps/{id}", "200"), 1);

        match m.put_app("/t/web", &json!({"id": "/t/web"}), false).await {
            Err(MarathonError::Locked { deployments }) => assert_eq!(deployments, ["d1"]),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            metrics.count("PUT /v2/apps/{id}", "409"),
            1,
            "a 409 is not retried"
        );
        assert_eq!(m.delete_app("/t/web").await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_unreachable_server_is_skipped_and_gives_up_after_the_attempts() {
        let up = serve(Router::new().route("/v2/deployments", get(|| async {
            axum::Json(json!([{"id": "d1", "version": "2026-11-23T10:00:00.000Z", "affectedApps": ["/a"]}]))
        })))
        .await;
        let down = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", l.local_addr().unwrap())
        };
        let metrics = CallMetrics::new();
        let servers = vec![
            Server {
                name: "a".into(),
                url: down.clone(),
            },
            Server {
                name: "b".into(),
                url: up,
            },
        ];
        let m = HttpMarathon::new(plain_client(), servers, fast(), metrics.clone());
        let ds = m.deployments().await.unwrap();
        assert_eq!(ds[0].affected_apps, ["/a"]);
        assert_eq!(metrics.count("GET /v2/deployments", "error"), 1);

        let only_down = HttpMarathon::new(
            plain_client(),
            vec![Server {
                name: "a".into(),
                url: down,
            }],
            fast(),
            metrics.clone(),
        );
        let e = only_down.deployments().await.unwrap_err();
        assert!(e.is_retryable(), "{e}");
        assert_eq!(
            metrics.count("GET /v2/deployments", "error"),
            4,
            "1 + 3 attempts"
        );
        let none = HttpMarathon::new(plain_client(), vec![], fast(), metrics);
        assert!(matches!(
            none.deployments().await,
            Err(MarathonError::NoServer)
        ));
    }

    #[tokio::test]
    async fn credentials_are_sent_and_a_refusal_is_final_and_typed() {
        let hits = Arc::new(AtomicU32::new(0));
        let counter = hits.clone();
        let guarded = move |headers: axum::http::HeaderMap| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                // base64("operator:s3cret")
                if headers.get("authorization").and_then(|v| v.to_str().ok())
                    == Some("Basic b3BlcmF0b3I6czNjcmV0")
                {
                    axum::Json(json!({"leader": "m-0.m.ns.svc.cluster.local:8443"})).into_response()
                } else {
                    (
                        StatusCode::UNAUTHORIZED,
                        [("WWW-Authenticate", r#"basic realm="Mesosphere""#)],
                    )
                        .into_response()
                }
            }
        };
        let url = serve(
            Router::new()
                .route("/v2/leader", get(guarded.clone()))
                .route("/v2/deployments", get(guarded)),
        )
        .await;
        let servers = || {
            vec![
                Server {
                    name: "m-0".into(),
                    url: url.clone(),
                },
                Server {
                    name: "m-1".into(),
                    url: url.clone(),
                },
            ]
        };
        let metrics = CallMetrics::new();
        let client = |password: &str| {
            HttpMarathon::new(plain_client(), servers(), fast(), metrics.clone())
                .with_credentials(Some(Credentials::new("operator".into(), password.into())))
        };
        assert_eq!(client("s3cret").leader().await.as_deref(), Some("m-0"));

        let before = hits.load(Ordering::SeqCst);
        match client("wrong").deployments().await {
            Err(MarathonError::Unauthorized { status, challenge }) => {
                assert_eq!(status, 401);
                assert_eq!(challenge.as_deref(), Some(r#"basic realm="Mesosphere""#));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            hits.load(Ordering::SeqCst) - before,
            1,
            "no retry: another server would refuse the same credentials"
        );
        assert_eq!(metrics.count("GET /v2/deployments", "401"), 1);
        let shown = format!("{:?}", Credentials::new("operator".into(), "s3cret".into()));
        assert!(
            shown.contains("operator") && !shown.contains("s3cret"),
            "{shown}"
        );
    }
}
