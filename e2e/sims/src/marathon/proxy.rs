//! The leader proxy (`api/LeaderProxyFilter.scala`,
//! `api/forwarder/AsyncUrlConnectionRequestForwarder.scala`): the leader answers itself
//! with `X-Marathon-Leader` and counts write requests; a standby forwards the request,
//! headers included (so the credentials reach the leader), over `https` when HTTP is
//! disabled, and returns the leader's answer with `X-Marathon-Via`; `/v2/events` is
//! answered with a 302 to the same URL on the leader instead.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

use super::Marathon;
use super::config::MarathonConfig;
use super::keystore::Keystore;

pub type ProxyClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

const VIA: &str = "X-Marathon-Via";

/// Request headers a reverse proxy does not forward (hop-by-hop, or set anew).
const NOT_FORWARDED: [HeaderName; 4] = [
    header::CONNECTION,
    header::HOST,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
];

/// The client a standby proxies with: `--leader_proxy_connection_timeout`, and over
/// HTTPS the keystore's trust (`tls::proxy_client_config`).
pub fn client(
    cfg: &MarathonConfig,
    keystore: Option<&Keystore>,
) -> Result<ProxyClient, rustls::Error> {
    let trusted = keystore.map_or(&[][..], |k| &k.trusted[..]);
    let tls = super::tls::proxy_client_config(trusted, !cfg.leader_proxy_ssl_ignore_hostname)?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(millis(cfg, "leader_proxy_connection_timeout")));
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

fn millis(cfg: &MarathonConfig, flag: &str) -> Duration {
    Duration::from_millis(
        cfg.values
            .get(flag)
            .and_then(|v| v.parse().ok())
            .unwrap_or(10_000),
    )
}

fn message(status: StatusCode, text: impl Into<String>) -> Response {
    (status, axum::Json(json!({"message": text.into()}))).into_response()
}

pub(super) async fn leader_proxy(
    State(m): State<Arc<Marathon>>,
    req: Request,
    next: Next,
) -> Response {
    if m.is_leader() {
        if matches!(
            *req.method(),
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        ) {
            m.write_requests.fetch_add(1, Ordering::SeqCst);
        }
        let mut resp = next.run(req).await;
        let me = format!("{}://{}", m.cfg.scheme(), m.cfg.advertised());
        if let Ok(v) = HeaderValue::from_str(&me) {
            resp.headers_mut().insert("X-Marathon-Leader", v);
        }
        return resp;
    }
    let me = m.cfg.advertised();
    if req
        .headers()
        .get_all(VIA)
        .iter()
        .any(|v| v.to_str().is_ok_and(|s| s.contains(&me)))
    {
        return message(StatusCode::BAD_GATEWAY, "Detected proxying loop.");
    }
    let mut leader = m.leader();
    for _ in 0..10 {
        if leader.as_ref().is_some_and(|l| *l != me) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        leader = m.leader();
    }
    let Some(leader) = leader.filter(|l| *l != me) else {
        return message(
            StatusCode::BAD_GATEWAY,
            "Could not determine the current leader",
        );
    };
    // `/v2/events` is redirected, not proxied (`shouldBeRedirectedToLeader`).
    if req.uri().path().starts_with("/v2/events") {
        let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let url = format!("{}://{leader}{path}", m.cfg.scheme());
        return (StatusCode::FOUND, [(header::LOCATION, url)]).into_response();
    }
    match forward(&m, &leader, req).await {
        Ok(resp) => resp,
        Err(e) => message(
            StatusCode::BAD_GATEWAY,
            format!("Could not proxy to the leader: {e}"),
        ),
    }
}

/// Sends `req` to `leader` and returns its answer with `X-Marathon-Via`.
async fn forward(m: &Marathon, leader: &str, req: Request) -> Result<Response, String> {
    let via =
        HeaderValue::from_str(&format!("1.1 {}", m.cfg.advertised())).map_err(|e| e.to_string())?;
    let (parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}://{leader}{path}", m.cfg.scheme());
    let body = axum::body::to_bytes(body, 16 << 20)
        .await
        .map_err(|e| e.to_string())?;
    let mut out = hyper::Request::builder().method(parts.method).uri(&url);
    for (name, value) in &parts.headers {
        if !NOT_FORWARDED.contains(name) {
            out = out.header(name, value);
        }
    }
    let out = out
        .header(VIA, via.clone())
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    let exchange = async {
        let resp = m.proxy.request(out).await.map_err(|e| causes(&e))?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok::<_, String>((parts, body))
    };
    let (remote, body) =
        tokio::time::timeout(millis(&m.cfg, "leader_proxy_read_timeout"), exchange)
            .await
            .map_err(|_| format!("{url} timed out"))??;
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = remote.status;
    for (name, value) in &remote.headers {
        if !NOT_FORWARDED.contains(name) {
            resp.headers_mut().append(name, value.clone());
        }
    }
    resp.headers_mut().append(VIA, via);
    Ok(resp)
}

/// An error with its causes (the client's own text is only "client error (Connect)").
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}
