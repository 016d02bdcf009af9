//! A small JSON-over-HTTP/1.1 client for the simulators' peer traffic (replica to
//! replica, agent to master, Marathon to agents). Redirects are not followed: callers
//! must see a 307 from a non-leader exactly as a real client would.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("request to {0} timed out")]
    Timeout(String),
    #[error("request to {0} failed: {1}")]
    Transport(String, String),
    #[error("bad request {0}: {1}")]
    Build(String, String),
}

#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpConnector, Full<Bytes>>,
}

/// A response: status, `Location` header (if any) and body bytes.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: Bytes,
}

impl Response {
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

impl Default for HttpClient {
    fn default() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        HttpClient {
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }
}

impl HttpClient {
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&serde_json::Value>,
        timeout: Duration,
    ) -> Result<Response, HttpError> {
        let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let request = Request::builder()
            .method(method)
            .uri(url)
            .header("content-type", "application/json")
            .body(Full::new(bytes))
            .map_err(|e| HttpError::Build(url.to_string(), e.to_string()))?;
        let fut = async {
            let resp = self
                .client
                .request(request)
                .await
                .map_err(|e| HttpError::Transport(url.to_string(), e.to_string()))?;
            let status = resp.status();
            let location = resp
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| HttpError::Transport(url.to_string(), e.to_string()))?
                .to_bytes();
            Ok(Response {
                status,
                location,
                body,
            })
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| HttpError::Timeout(url.to_string()))?
    }

    pub async fn get(&self, url: &str, timeout: Duration) -> Result<Response, HttpError> {
        self.send(Method::GET, url, None, timeout).await
    }

    pub async fn post(
        &self,
        url: &str,
        body: &serde_json::Value,
        timeout: Duration,
    ) -> Result<Response, HttpError> {
        self.send(Method::POST, url, Some(body), timeout).await
    }
}
