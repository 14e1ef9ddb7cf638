//! Forwarding one request to an environment and its answer back: bodies streamed in both
//! directions (nothing is buffered, so server-sent events flow), hop-by-hop headers
//! removed, `X-Forwarded-*` set, and connection upgrades (WebSockets) joined end to end.
//! Through the API server's service proxy (`route = "apiserver"`) the response streams
//! likewise, but the request body is taken whole (kube's client sends no streamed
//! request body) and upgrades are not carried.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::metrics::Metrics;

/// The error of a response body: the environment's connection, or the API server's.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every response serve sends.
pub type ServeBody = UnsyncBoxBody<Bytes, BodyError>;

/// The largest request body carried through the API server's service proxy.
pub const APISERVER_MAX_BODY: usize = 16 << 20;

/// How long an environment may take to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an environment may take to send the response head (the body may stream for
/// as long as it likes: server-sent events).
pub const RESPONSE_HEAD_TIMEOUT: Duration = Duration::from_secs(120);
/// How long pooled connections to environments stay open unused.
const POOL_IDLE: Duration = Duration::from_secs(30);

/// Headers that describe one connection, not the message (RFC 9110 7.6.1), plus the
/// ones a proxy must not forward.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The HTTP client that talks to environments (pooled connections).
pub type UpstreamClient = Client<HttpConnector, Counted<Incoming>>;

pub fn client() -> UpstreamClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE)
        .pool_max_idle_per_host(64)
        .build(connector)
}

/// A body that counts the bytes passing through it.
pub struct Counted<B> {
    inner: B,
    counter: Arc<Metrics>,
    direction: Direction,
}

#[derive(Clone, Copy)]
pub enum Direction {
    In,
    Out,
}

impl<B> Counted<B> {
    pub fn new(inner: B, counter: Arc<Metrics>, direction: Direction) -> Self {
        Counted {
            inner,
            counter,
            direction,
        }
    }

    fn count(&self) -> &AtomicU64 {
        match self.direction {
            Direction::In => &self.counter.bytes_in,
            Direction::Out => &self.counter.bytes_out,
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Counted<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.count().fetch_add(data.len() as u64, Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Why a request could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("cannot build the request to {authority}: {reason}")]
    Request { authority: String, reason: String },
    #[error("{authority} did not answer: {source}")]
    Upstream {
        authority: String,
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    #[error("{authority} sent no response head within {}s", RESPONSE_HEAD_TIMEOUT.as_secs())]
    Timeout { authority: String },
    #[error(
        "connection upgrades (WebSockets) are not carried through the API server's service proxy (`route = \"apiserver\"`); use route = \"direct\" or \"endpoints\" for them"
    )]
    UpgradeViaApiServer,
    #[error(
        "the request body is larger than {} MiB, the most carried through the API server's service proxy",
        APISERVER_MAX_BODY >> 20
    )]
    BodyTooLarge,
    #[error("reading the request body failed: {reason}")]
    Body { reason: String },
    #[error("the API server's service proxy at {path} failed: {source}")]
    ApiServer {
        path: String,
        #[source]
        source: crate::cluster::RelayError,
    },
}

impl ProxyError {
    /// The status to answer with: the client's fault, or the environment's.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::UpgradeViaApiServer => StatusCode::NOT_IMPLEMENTED,
            ProxyError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::Body { .. } => StatusCode::BAD_REQUEST,
            ProxyError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::BAD_GATEWAY,
        }
    }

    /// Whether the environment (not the client) failed: its address is looked up again.
    pub fn upstream_failed(&self) -> bool {
        !matches!(
            self,
            ProxyError::UpgradeViaApiServer | ProxyError::BodyTooLarge | ProxyError::Body { .. }
        )
    }
}

/// Whether the request asks to switch protocols (`Connection: upgrade` + `Upgrade`).
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Removes hop-by-hop headers: the fixed set and every header `Connection` names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Sets `X-Forwarded-For` (appending the client), and `-Proto` and `-Host` unless a proxy
/// in front (an Ingress terminating TLS) already set them.
pub fn set_forwarded(headers: &mut HeaderMap, client: SocketAddr, host: &str) {
    let xff = HeaderName::from_static("x-forwarded-for");
    let ip = client.ip().to_string();
    let value = match headers.get(&xff).and_then(|v| v.to_str().ok()) {
        Some(previous) => format!("{previous}, {ip}"),
        None => ip,
    };
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(xff, value);
    }
    let proto = HeaderName::from_static("x-forwarded-proto");
    if !headers.contains_key(&proto) {
        headers.insert(proto, HeaderValue::from_static("http"));
    }
    let fhost = HeaderName::from_static("x-forwarded-host");
    if !headers.contains_key(&fhost)
        && let Ok(value) = HeaderValue::from_str(host)
    {
        headers.insert(fhost, value);
    }
}

/// Forwards `req` to `authority` (`host:port`) and returns its response, streaming.
/// An upgrade (101) is joined: the two upgraded connections are copied into each other
/// by a task of their own until either side closes.
pub async fn forward(
    client: &UpstreamClient,
    metrics: &Arc<Metrics>,
    mut req: Request<Incoming>,
    authority: &str,
    peer: SocketAddr,
    host: &str,
) -> Result<Response<ServeBody>, ProxyError> {
    let upgrade = is_upgrade(req.headers());
    let upgrade_protocol = req.headers().get(header::UPGRADE).cloned();
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));

    let (mut parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    parts.uri = Uri::builder()
        .scheme("http")
        .authority(authority)
        .path_and_query(path)
        .build()
        .map_err(|e| ProxyError::Request {
            authority: authority.to_owned(),
            reason: e.to_string(),
        })?;
    parts.version = http::Version::HTTP_11;
    strip_hop_by_hop(&mut parts.headers);
    set_forwarded(&mut parts.headers, peer, host);
    if let Some(protocol) = upgrade_protocol.filter(|_| upgrade) {
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        parts.headers.insert(header::UPGRADE, protocol);
    }
    let outgoing = Request::from_parts(parts, Counted::new(body, metrics.clone(), Direction::In));

    let response = tokio::time::timeout(RESPONSE_HEAD_TIMEOUT, client.request(outgoing))
        .await
        .map_err(|_| ProxyError::Timeout {
            authority: authority.to_owned(),
        })?
        .map_err(|source| ProxyError::Upstream {
            authority: authority.to_owned(),
            source,
        })?;

    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        let mut response = response;
        let upstream_upgrade = hyper::upgrade::on(&mut response);
        if let Some(client_upgrade) = client_upgrade {
            metrics.upgrades.fetch_add(1, Relaxed);
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let (Ok(downstream), Ok(upstream)) = (client_upgrade.await, upstream_upgrade.await)
                else {
                    metrics.upstream_errors.fetch_add(1, Relaxed);
                    return;
                };
                let (mut downstream, mut upstream) =
                    (TokioIo::new(downstream), TokioIo::new(upstream));
                match tokio::io::copy_bidirectional(&mut downstream, &mut upstream).await {
                    Ok((from_client, from_upstream)) => {
                        metrics.bytes_in.fetch_add(from_client, Relaxed);
                        metrics.bytes_out.fetch_add(from_upstream, Relaxed);
                    }
                    Err(_) => {
                        metrics.upstream_errors.fetch_add(1, Relaxed);
                    }
                }
            });
        }
        // The 101 keeps its Connection/Upgrade headers: they are the answer to the upgrade.
        let (parts, _) = response.into_parts();
        return Ok(Response::from_parts(parts, empty()));
    }

    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let body = Counted::new(body, metrics.clone(), Direction::Out)
        .map_err(|e| -> BodyError { e.into() })
        .boxed_unsync();
    Ok(Response::from_parts(parts, body))
}

/// Forwards `req` through the API server's service proxy, `prefix` being
/// `/api/v1/namespaces/NS/services/NAME:PORT/proxy`, with the kubeconfig's credentials
/// (`client`). The response streams; the request body is read whole, up to
/// [`APISERVER_MAX_BODY`].
pub async fn forward_via_apiserver(
    client: &crate::cluster::ClusterClient,
    metrics: &Arc<Metrics>,
    req: Request<Incoming>,
    prefix: &str,
    peer: SocketAddr,
    host: &str,
) -> Result<Response<ServeBody>, ProxyError> {
    if is_upgrade(req.headers()) {
        return Err(ProxyError::UpgradeViaApiServer);
    }
    let (mut parts, body) = req.into_parts();
    let path = format!(
        "{prefix}{}",
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    parts.uri = path
        .parse()
        .map_err(|e: http::uri::InvalidUri| ProxyError::Request {
            authority: "the API server".to_owned(),
            reason: e.to_string(),
        })?;
    parts.version = http::Version::HTTP_11;
    strip_hop_by_hop(&mut parts.headers);
    strip_apiserver_credentials(&mut parts.headers);
    set_forwarded(&mut parts.headers, peer, host);
    // The API server's client sets its own Host.
    parts.headers.remove(header::HOST);
    let body = http_body_util::Limited::new(
        Counted::new(body, metrics.clone(), Direction::In),
        APISERVER_MAX_BODY,
    )
    .collect()
    .await
    .map_err(|e| {
        if e.is::<http_body_util::LengthLimitError>() {
            ProxyError::BodyTooLarge
        } else {
            ProxyError::Body {
                reason: e.to_string(),
            }
        }
    })?
    .to_bytes();
    let outgoing = Request::from_parts(parts, body);
    let response = tokio::time::timeout(
        RESPONSE_HEAD_TIMEOUT,
        crate::cluster::send_through_apiserver(client, outgoing),
    )
    .await
    .map_err(|_| ProxyError::Timeout {
        authority: "the API server".to_owned(),
    })?
    .map_err(|source| ProxyError::ApiServer {
        path: prefix.to_owned(),
        source,
    })?;
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let body = Counted::new(body, metrics.clone(), Direction::Out).boxed_unsync();
    Ok(Response::from_parts(parts, body))
}

/// Headers a visitor must not get to the API server: its own credentials (the API server
/// would authenticate the visitor by them instead of serve) and impersonation requests
/// (which serve's own credentials might be allowed to make).
fn strip_apiserver_credentials(headers: &mut HeaderMap) {
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            let name = name.as_str();
            name == "authorization" || name.starts_with("impersonate-")
        })
        .cloned()
        .collect();
    for name in names {
        headers.remove(name);
    }
}

pub fn empty() -> ServeBody {
    http_body_util::Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn full(text: impl Into<Bytes>) -> ServeBody {
    http_body_util::Full::new(text.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_the_ones_connection_names_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-secret-hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        let names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["x-kept"]);
    }

    #[test]
    fn forwarded_for_appends_and_proto_and_host_are_kept_when_set() {
        let peer: SocketAddr = "10.0.0.7:5555".parse().unwrap();
        let mut h = HeaderMap::new();
        set_forwarded(&mut h, peer, "db139cf.review.example.com");
        assert_eq!(h["x-forwarded-for"], "10.0.0.7");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "db139cf.review.example.com");
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        set_forwarded(&mut h, peer, "db139cf.review.example.com");
        assert_eq!(h["x-forwarded-for"], "1.2.3.4, 10.0.0.7");
        assert_eq!(h["x-forwarded-proto"], "https");
    }

    #[test]
    fn a_visitors_credentials_and_impersonation_never_reach_the_apiserver() {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer visitor"));
        h.insert("impersonate-user", HeaderValue::from_static("admin"));
        h.insert(
            "impersonate-group",
            HeaderValue::from_static("system:masters"),
        );
        h.insert("impersonate-extra-scopes", HeaderValue::from_static("x"));
        h.insert("cookie", HeaderValue::from_static("session=1"));
        strip_apiserver_credentials(&mut h);
        let names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["cookie"]);
    }

    #[test]
    fn upgrade_needs_both_headers() {
        let mut h = HeaderMap::new();
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        assert!(!is_upgrade(&h));
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        assert!(is_upgrade(&h));
    }
}
