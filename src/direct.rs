//! The direct path: plain `http://` HTTP/1.1 requests sent on hyper's own
//! connections from a small pool here, without reqwest's client around them.
//!
//! reqwest's per-request layer costs more CPU than hyper's exchange itself:
//! it clones its connector service stack for every request, keys hyper-util's
//! pool by a hashed URI, spawns a readiness task per response and re-parses
//! the response URL. bench-native measured 17 us of CPU per request through
//! reqwest and 8.5 us on hyper connections directly (64 tasks; the
//! `native-hyper` row of docs/benchmarks.md), and loopfree's own requests cost
//! 15-30 % less CPU this way (async64, threads16; the commit has the figures).
//!
//! A pool takes the requests it can carry the same way reqwest would: plain
//! HTTP, HTTP/1.1 allowed, no proxy (none configured, and none in the
//! environment when it is trusted), no Unix socket, no local address, no
//! CONNECT. Everything else goes through reqwest as before. What reqwest's
//! pool did and this one does too: connections reused newest first, idle
//! connections closed after `keepalive_expiry` (checked on checkout and by a
//! reaper task), at most `idle_cap` idle per origin, a request that meets a
//! pooled connection closed before it went out is retried on a new one, the
//! Host header added when absent, header names sent Title-Case, TCP_NODELAY
//! and reqwest's TCP keep-alive settings, the request's connect timeout.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body as _, Frame, SizeHint};
use hyper::body::Incoming;
use reqwest::header::{HeaderValue, HOST};
use reqwest::{Method, Url};

use crate::connect::within_connect_bound;
use crate::errors::{Error, ErrorKind, Phase};
use crate::runtime;

type Sender = hyper::client::conn::http1::SendRequest<reqwest::Body>;

/// Where a connection goes: the URL's host and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Origin {
    host: url::Host<String>,
    port: u16,
}

impl Origin {
    fn of(url: &Url) -> Option<Self> {
        Some(Self {
            host: url.host()?.to_owned(),
            port: url.port_or_known_default()?,
        })
    }
}

struct Idle {
    sender: Sender,
    since: Instant,
}

/// Idle HTTP/1.1 connections by origin, for one engine pool in one process.
pub struct DirectPool {
    idle: Mutex<HashMap<Origin, Vec<Idle>>>,
    idle_cap: usize,
    expiry: Option<Duration>,
    /// The client's connect timeout (a request's own applies as well).
    connect_timeout: Option<Duration>,
    reaping: AtomicBool,
}

/// Environment variables that give plain-HTTP requests a proxy (reqwest's
/// system proxy reads these when the client trusts the environment).
const PROXY_VARIABLES: [&str; 4] = ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"];

/// The shortest pause of the reaper between two looks at the idle list.
const MIN_REAP_INTERVAL: Duration = Duration::from_millis(100);

/// reqwest's TCP keep-alive defaults, kept for the connections made here.
const TCP_KEEPALIVE: Duration = Duration::from_secs(15);
const TCP_KEEPALIVE_RETRIES: u32 = 3;

impl DirectPool {
    /// A pool when a client with these settings would send plain-HTTP
    /// requests straight to the server through reqwest; None otherwise.
    pub fn for_settings(
        http1: bool,
        has_proxy: bool,
        trust_env: bool,
        bound_elsewhere: bool,
        idle_cap: usize,
        expiry: Option<Duration>,
        connect_timeout: Option<Duration>,
    ) -> Option<Arc<Self>> {
        let env_proxy = trust_env
            && PROXY_VARIABLES
                .iter()
                .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()));
        if !http1 || has_proxy || env_proxy || bound_elsewhere {
            return None;
        }
        Some(Arc::new(Self {
            idle: Mutex::new(HashMap::new()),
            idle_cap,
            expiry,
            connect_timeout,
            reaping: AtomicBool::new(false),
        }))
    }

    /// Whether this pool carries a request for `url` with `method`.
    pub fn carries(&self, method: &Method, url: &Url) -> bool {
        url.scheme() == "http" && *method != Method::CONNECT
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Origin, Vec<Idle>>> {
        // Only whole pushes and pops happen under the lock.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn expired(&self, since: Instant) -> bool {
        self.expiry.is_some_and(|expiry| since.elapsed() >= expiry)
    }

    /// Send `request` to `url`'s origin; the response's body gives the
    /// connection back to the pool once it has been read to its end.
    pub async fn send(
        self: &Arc<Self>,
        url: &Url,
        mut request: http::Request<reqwest::Body>,
    ) -> Result<reqwest::Response, Error> {
        let origin = Origin::of(url).ok_or_else(|| {
            Error::new(
                ErrorKind::UnsupportedProtocol,
                "Request URL is missing a host.",
            )
        })?;
        to_origin_form(url, &mut request)?;
        loop {
            let (mut sender, reused) = match self.pooled(&origin).await {
                Some(sender) => (sender, true),
                None => (self.connect(&origin).await?, false),
            };
            match sender.try_send_request(request).await {
                Ok(response) => {
                    let (parts, body) = response.into_parts();
                    let body = PooledBody {
                        body,
                        release: Some((sender, Arc::downgrade(self), origin)),
                    };
                    let response = http::Response::from_parts(parts, reqwest::Body::wrap(body));
                    return Ok(reqwest::Response::from(response));
                }
                Err(mut failed) => match failed.take_message() {
                    // A pooled connection the server had closed: the request
                    // never went out, so it goes on a new one (as hyper-util).
                    Some(unsent) if reused => request = unsent,
                    _ => return Err(Error::from_direct(failed.error(), false, Phase::Send)),
                },
            }
        }
    }

    /// The newest idle connection to `origin` that can take a request.
    async fn pooled(&self, origin: &Origin) -> Option<Sender> {
        loop {
            let idle = self.lock().get_mut(origin)?.pop()?;
            if self.expired(idle.since) {
                continue; // dropped: hyper closes it
            }
            let mut sender = idle.sender;
            if sender.is_ready() {
                return Some(sender);
            }
            // Its last response was read to the end: it is ready as soon as
            // hyper's connection task has seen that, or closed.
            if !sender.is_closed() && sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    async fn connect(&self, origin: &Origin) -> Result<Sender, Error> {
        let stream = within_connect_bound(self.connect_timeout, open(origin))
            .await
            .ok_or_else(Error::connect_timed_out)??;
        let io = hyper_util::rt::TokioIo::new(stream);
        let (sender, connection) = hyper::client::conn::http1::Builder::new()
            // As reqwest is configured in engine.rs: h11 sends names as given.
            .title_case_headers(true)
            .handshake(io)
            .await
            .map_err(|e| Error::from_direct(&e, true, Phase::Send))?;
        runtime::spawn_background(async move {
            // Its errors reach the request through the sender.
            let _ = connection.await;
        });
        Ok(sender)
    }

    /// Take a connection back after a response was read to its end.
    fn release(self: Arc<Self>, origin: Origin, sender: Sender) {
        if self.idle_cap == 0 || sender.is_closed() {
            return;
        }
        {
            let mut idle = self.lock();
            let list = idle.entry(origin).or_default();
            if list.len() >= self.idle_cap {
                return;
            }
            list.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
        self.start_reaper();
    }

    /// Close expired idle connections even when no request comes to find them.
    fn start_reaper(self: &Arc<Self>) {
        let Some(expiry) = self.expiry else { return };
        if self.reaping.swap(true, Ordering::SeqCst) {
            return;
        }
        let pool = Arc::downgrade(self);
        runtime::spawn_background(reap(pool, expiry.max(MIN_REAP_INTERVAL)));
    }

    /// Drop expired idle connections; whether any idle ones are left.
    fn prune(&self) -> bool {
        let mut idle = self.lock();
        idle.retain(|_, list| {
            list.retain(|entry| !self.expired(entry.since) && !entry.sender.is_closed());
            !list.is_empty()
        });
        !idle.is_empty()
    }
}

async fn reap(pool: Weak<DirectPool>, interval: Duration) {
    loop {
        runtime::sleep(interval).await;
        let Some(pool) = pool.upgrade() else { return };
        if !pool.prune() {
            pool.reaping.store(false, Ordering::SeqCst);
            return;
        }
    }
}

/// Resolve `origin` and open a TCP connection to the first address that answers.
async fn open(origin: &Origin) -> Result<tokio::net::TcpStream, Error> {
    let addresses: Vec<SocketAddr> = match &origin.host {
        url::Host::Ipv4(ip) => vec![SocketAddr::new((*ip).into(), origin.port)],
        url::Host::Ipv6(ip) => vec![SocketAddr::new((*ip).into(), origin.port)],
        url::Host::Domain(name) => tokio::net::lookup_host((name.as_str(), origin.port))
            .await
            .map_err(|e| connect_failed("dns error", e))?
            .collect(),
    };
    let mut last = None;
    for address in addresses {
        match tokio::net::TcpStream::connect(address).await {
            Ok(stream) => {
                configure(&stream).map_err(|e| connect_failed("tcp connect error", e))?;
                return Ok(stream);
            }
            Err(err) => last = Some(err),
        }
    }
    let err = last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "the host has no address")
    });
    Err(connect_failed("tcp connect error", err))
}

fn connect_failed(what: &'static str, err: std::io::Error) -> Error {
    Error::from_direct(&ConnectFailure { what, err }, true, Phase::Send)
}

fn configure(stream: &tokio::net::TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(TCP_KEEPALIVE)
        .with_interval(TCP_KEEPALIVE)
        .with_retries(TCP_KEEPALIVE_RETRIES);
    socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive)
}

/// A failure to resolve or connect, worded as reqwest words it.
#[derive(Debug)]
struct ConnectFailure {
    what: &'static str,
    err: std::io::Error,
}

impl std::fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.what)
    }
}

impl std::error::Error for ConnectFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.err)
    }
}

/// Send the request line in origin form (`GET /path?query`), with a Host
/// header made from the URL when the caller gave none, as hyper-util does.
fn to_origin_form(url: &Url, request: &mut http::Request<reqwest::Body>) -> Result<(), Error> {
    let path = &url[url::Position::BeforePath..url::Position::AfterQuery];
    let uri = http::Uri::try_from(path).map_err(|e| {
        Error::new(
            ErrorKind::InvalidUrl,
            format!("Invalid URL {:?}: {e}", url.as_str()),
        )
    })?;
    *request.uri_mut() = uri;
    if !request.headers().contains_key(HOST) {
        let host = url.host_str().unwrap_or_default();
        let value = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let value = HeaderValue::from_str(&value).map_err(|_| {
            Error::new(
                ErrorKind::LocalProtocol,
                format!("Illegal header value: {value:?}"),
            )
        })?;
        request.headers_mut().insert(HOST, value);
    }
    Ok(())
}

/// A response body that returns its connection to the pool when read to
/// its end. Dropped earlier, it drops the connection (hyper closes it).
struct PooledBody {
    body: Incoming,
    release: Option<(Sender, Weak<DirectPool>, Origin)>,
}

impl PooledBody {
    fn release(&mut self) {
        if let Some((sender, pool, origin)) = self.release.take() {
            if let Some(pool) = pool.upgrade() {
                pool.release(origin, sender);
            }
        }
    }
}

impl http_body::Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.release(),
            Poll::Ready(Some(Err(_))) => self.release = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        // An empty body (HEAD, 204, 304) may never be polled.
        if self.body.is_end_stream() {
            self.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_for(url: &str) -> (Url, http::Request<reqwest::Body>) {
        let url = Url::parse(url).unwrap();
        (url, http::Request::new(reqwest::Body::from(Bytes::new())))
    }

    #[test]
    fn request_line_is_origin_form_without_the_fragment() {
        let (url, mut request) = request_for("http://example.com/a%20b/c?x=1&y=%2F#frag");
        to_origin_form(&url, &mut request).unwrap();
        assert_eq!(request.uri().to_string(), "/a%20b/c?x=1&y=%2F");
        assert_eq!(request.headers()[HOST], "example.com");
        let (url, mut request) = request_for("http://example.com");
        to_origin_form(&url, &mut request).unwrap();
        assert_eq!(request.uri().to_string(), "/");
    }

    #[test]
    fn host_header_carries_a_non_default_port_and_is_kept_when_given() {
        let (url, mut request) = request_for("http://[::1]:8080/");
        to_origin_form(&url, &mut request).unwrap();
        assert_eq!(request.headers()[HOST], "[::1]:8080");
        let (url, mut request) = request_for("http://127.0.0.1:80/");
        to_origin_form(&url, &mut request).unwrap();
        assert_eq!(request.headers()[HOST], "127.0.0.1");
        let (url, mut request) = request_for("http://127.0.0.1:8080/");
        request
            .headers_mut()
            .insert(HOST, HeaderValue::from_static("other"));
        to_origin_form(&url, &mut request).unwrap();
        assert_eq!(request.headers()[HOST], "other");
    }

    #[test]
    fn origins_differ_by_host_and_port() {
        let origin = |u: &str| Origin::of(&Url::parse(u).unwrap()).unwrap();
        assert_eq!(origin("http://a.test/x"), origin("http://a.test:80/y"));
        assert_ne!(origin("http://a.test/"), origin("http://a.test:81/"));
        assert_ne!(origin("http://127.0.0.1/"), origin("http://localhost/"));
    }

    #[test]
    fn only_settings_reqwest_would_send_straight_get_a_pool() {
        let pool = |http1, proxy, bound| {
            DirectPool::for_settings(http1, proxy, false, bound, 10, None, None).is_some()
        };
        assert!(pool(true, false, false));
        assert!(!pool(false, false, false)); // h2 prior knowledge
        assert!(!pool(true, true, false)); // a proxy
        assert!(!pool(true, false, true)); // a Unix socket or a local address
    }

    #[test]
    fn only_plain_http_and_not_connect_is_carried() {
        let pool = DirectPool::for_settings(true, false, false, false, 10, None, None).unwrap();
        let url = |u: &str| Url::parse(u).unwrap();
        assert!(pool.carries(&Method::GET, &url("http://a.test/")));
        assert!(pool.carries(&Method::POST, &url("http://a.test/")));
        assert!(!pool.carries(&Method::GET, &url("https://a.test/")));
        assert!(!pool.carries(&Method::CONNECT, &url("http://a.test/")));
    }

    #[test]
    fn connect_failures_are_classified_as_reqwest_ones_were() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let err = connect_failed("tcp connect error", refused);
        assert_eq!(err.kind, ErrorKind::Connect);
        assert!(err.to_string().starts_with("tcp connect error: "));
        assert_eq!(Error::connect_timed_out().kind, ErrorKind::ConnectTimeout);
    }
}
