//! `Engine`: the Rust half of a `Client`/`AsyncClient`. It owns the reqwest
//! connection pool, the direct path's pool for plain HTTP (`crate::direct`)
//! and the connection limiter, and starts requests on the
//! runtime. The same engine serves sync and async callers on any thread or
//! event loop: it holds no reference to any Python event loop.
//!
//! The pool is tied to the process that opened it. After `fork()` the child
//! builds a fresh pool on first use and abandons (never drops, never writes
//! to) the inherited connections, which belong to the parent.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyTuple};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};

use crate::body_sender::BodySender;
use crate::connect::ConnectClockLayer;
use crate::direct::DirectPool;
use crate::errors::{Error, ErrorKind};
use crate::exchange::{self, Options, Outcome, RequestSpec, Timeouts};
use crate::pending::{self, Pending};
use crate::runtime::{self, ProcessRuntime, Semaphore};
use crate::tls::{self, TlsSettings};

/// Settings needed to (re)build the pool; kept to rebuild it after a fork.
#[derive(Debug, Clone)]
struct PoolConfig {
    tls: TlsSettings,
    max_connections: Option<usize>,
    max_keepalive_connections: Option<usize>,
    keepalive_expiry: Option<Duration>,
    connect_timeout: Option<Duration>,
    proxy: Option<String>,
    /// Sent to the proxy: on forwarded requests and on CONNECT.
    proxy_headers: Option<HeaderMap>,
    local_address: Option<IpAddr>,
    /// Connect every request over this Unix socket instead of TCP.
    uds: Option<String>,
    trust_env: bool,
}

/// A pool and its limiter, valid only in the process that built them.
struct Pool {
    pid: u32,
    client: reqwest::Client,
    /// Plain-HTTP requests go here instead of through `client` (see `direct`).
    direct: Option<Arc<DirectPool>>,
    limiter: Option<Arc<Semaphore>>,
}

impl PoolConfig {
    fn build(&self) -> Result<Pool, Error> {
        let config_error = |e: reqwest::Error| Error::new(ErrorKind::Transport, e.to_string());
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            // httpx (h11) sends header names as given, Title-Case for its
            // defaults; some proxies match Proxy-Authorization by case.
            .http1_title_case_headers()
            .tcp_nodelay(true)
            // Each request's own connect timeout, and when it was connected.
            .connector_layer(ConnectClockLayer)
            .pool_max_idle_per_host(idle_cap(
                self.max_keepalive_connections,
                self.max_connections,
            ))
            .pool_idle_timeout(self.keepalive_expiry);
        if let Some(connect) = self.connect_timeout {
            builder = builder.connect_timeout(connect);
        }
        builder = builder.use_preconfigured_tls(tls::client_config(&self.tls)?);
        builder = match (self.tls.http1, self.tls.http2) {
            (false, true) => builder.http2_prior_knowledge(),
            (_, false) => builder.http1_only(),
            (true, true) => builder,
        };
        if let Some(address) = self.local_address {
            builder = builder.local_address(address);
        }
        if let Some(path) = &self.uds {
            builder = builder.unix_socket(path.as_str());
        }
        if let Some(proxy) = &self.proxy {
            let mut proxy = reqwest::Proxy::all(proxy.as_str())
                .map_err(|e| Error::new(ErrorKind::Proxy, e.to_string()))?;
            if let Some(headers) = &self.proxy_headers {
                proxy = proxy.headers(headers.clone());
            }
            builder = builder.proxy(proxy);
        } else if !self.trust_env {
            builder = builder.no_proxy();
        }
        let client = builder.build().map_err(config_error)?;
        let direct = DirectPool::for_settings(
            self.tls.http1,
            self.proxy.is_some(),
            self.trust_env,
            self.local_address.is_some() || self.uds.is_some(),
            idle_cap(self.max_keepalive_connections, self.max_connections),
            self.keepalive_expiry,
            self.connect_timeout,
        );
        Ok(Pool {
            pid: std::process::id(),
            client,
            direct,
            limiter: self
                .max_connections
                .map(|n| Arc::new(Semaphore::new(n.max(1)))),
        })
    }
}

#[pyclass(frozen, module = "loopfree._loopfree")]
pub struct Engine {
    config: PoolConfig,
    pool: ArcSwapOption<Pool>,
    urls: ParsedUrls,
}

/// URLs this engine parsed before, by their text: a client sends to the same
/// few URLs again and again, and a lookup costs a tenth of a parse.
#[derive(Default)]
struct ParsedUrls(std::sync::Mutex<std::collections::HashMap<Box<str>, Url>>);

/// Entries kept before the cache starts over.
const PARSED_URLS_MAX: usize = 256;

impl ParsedUrls {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<Box<str>, Url>> {
        // A panic while holding it cannot leave the map inconsistent.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `parse_url(text)`, from the cache when seen before (errors are not kept).
    fn parse(&self, text: &str) -> Result<Url, Error> {
        if let Some(url) = self.lock().get(text) {
            return Ok(url.clone());
        }
        let url = parse_url(text)?;
        let mut urls = self.lock();
        if urls.len() >= PARSED_URLS_MAX {
            urls.clear();
        }
        urls.insert(text.into(), url.clone());
        Ok(url)
    }
}

fn seconds(value: Option<f64>) -> PyResult<Option<Duration>> {
    match value {
        None => Ok(None),
        Some(s) if s.is_finite() && s >= 0.0 => Ok(Some(Duration::from_secs_f64(s))),
        Some(s) => Err(pyo3::exceptions::PyValueError::new_err(format!(
            "timeouts must be non-negative numbers of seconds, got {s}"
        ))),
    }
}

/// Bodies from this size up are sent from the Python `bytes` object itself,
/// kept alive until the request is done (16 MiB upload: one 16 MiB copy and
/// its page faults fewer). Smaller ones are copied: cheaper than keeping a
/// Python object whose release, without the GIL, is deferred.
const ZERO_COPY_MIN: usize = 64 * 1024;

/// A request body (or body chunk) from Python, as hyper sends it.
pub fn body_bytes(bytes: &Bound<'_, PyBytes>) -> Bytes {
    let data = bytes.as_bytes();
    if data.len() < ZERO_COPY_MIN {
        Bytes::copy_from_slice(data)
    } else {
        Bytes::from_owner(PyBackedBytes::from(bytes.clone()))
    }
}

fn parse_headers(raw: &Bound<'_, PyAny>) -> Result<HeaderMap, Error> {
    let illegal = |what: &str, value: &[u8]| {
        Error::new(
            ErrorKind::LocalProtocol,
            format!(
                "Illegal header {what}: {:?}",
                String::from_utf8_lossy(value)
            ),
        )
    };
    let iter = raw
        .try_iter()
        .map_err(|e| Error::new(ErrorKind::LocalProtocol, e.to_string()))?;
    let mut headers = HeaderMap::new();
    for item in iter {
        let item = item.map_err(|e| Error::new(ErrorKind::LocalProtocol, e.to_string()))?;
        let pair = item.cast::<PyTuple>().map_err(|_| {
            Error::new(
                ErrorKind::LocalProtocol,
                "headers must be (name, value) pairs",
            )
        })?;
        let name = pair
            .get_item(0)
            .and_then(|n| n.cast_into::<PyBytes>().map_err(Into::into));
        let value = pair
            .get_item(1)
            .and_then(|v| v.cast_into::<PyBytes>().map_err(Into::into));
        let (Ok(name), Ok(value)) = (name, value) else {
            return Err(Error::new(
                ErrorKind::LocalProtocol,
                "header names and values must be bytes",
            ));
        };
        let name_bytes = name.as_bytes();
        let value_bytes = value.as_bytes();
        let name = HeaderName::from_bytes(name_bytes).map_err(|_| illegal("name", name_bytes))?;
        let value =
            HeaderValue::from_bytes(value_bytes).map_err(|_| illegal("value", value_bytes))?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// How many idle connections per host the pool keeps. `max_keepalive_connections`
/// is a soft cap: hyper's pool would close a connection the moment it came
/// back above the cap, so under steady concurrency above it (64 tasks, cap 20)
/// most requests opened a new connection (measured: 9.2k vs 15.6k req/s at
/// 64 concurrent requests). Idle connections up to `max_connections` are kept
/// instead, and all of them still close after `keepalive_expiry`. Zero keeps
/// its meaning: no keep-alive.
fn idle_cap(max_keepalive: Option<usize>, max_connections: Option<usize>) -> usize {
    match (max_keepalive, max_connections) {
        (Some(0), _) => 0,
        (Some(keepalive), Some(connections)) => keepalive.max(connections),
        _ => usize::MAX,
    }
}

fn parse_url(url: &str) -> Result<Url, Error> {
    let parsed = Url::parse(url).map_err(|e| match e {
        url::ParseError::RelativeUrlWithoutBase => Error::new(
            ErrorKind::UnsupportedProtocol,
            "Request URL is missing an 'http://' or 'https://' protocol.",
        ),
        // httpx's URL accepts these (a port of any size, a percent-encoded
        // host) and the connect attempt fails; so does ours, before sending.
        url::ParseError::InvalidPort => Error::new(
            ErrorKind::Connect,
            format!("Cannot connect to {url:?}: the port is outside 0-65535"),
        ),
        url::ParseError::InvalidDomainCharacter | url::ParseError::IdnaError => Error::new(
            ErrorKind::Connect,
            format!("Cannot connect to {url:?}: the host is not a valid name"),
        ),
        other => Error::new(
            ErrorKind::InvalidUrl,
            format!("Invalid URL {url:?}: {other}"),
        ),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::new(
            ErrorKind::UnsupportedProtocol,
            format!(
                "Request URL has an unsupported protocol '{}://'.",
                parsed.scheme()
            ),
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(Error::new(
            ErrorKind::UnsupportedProtocol,
            "Request URL is missing a host.",
        ));
    }
    Ok(parsed)
}

impl Engine {
    /// The pool for this process (whose runtime is `runtime`), rebuilt after
    /// a fork. (The runtime's pid was read once for this request.)
    fn pool(&self, runtime: &ProcessRuntime) -> Result<Arc<Pool>, Error> {
        let current = self.pool.load_full();
        if let Some(pool) = &current {
            if pool.pid == runtime.pid() {
                return Ok(pool.clone());
            }
        }
        let fresh = Arc::new(self.config.build()?);
        retire(self.pool.swap(Some(fresh.clone())));
        Ok(fresh)
    }
}

/// Let go of a pool taken out of an engine. A pool inherited across fork
/// holds the parent's connections: it is leaked, never closed or written to.
fn retire(pool: Option<Arc<Pool>>) {
    if let Some(pool) = pool {
        if runtime::belongs_to_this_process(pool.pid) {
            drop(pool);
            // The idle connections' tasks close their sockets when next polled.
            runtime::nudge();
        } else {
            std::mem::forget(pool);
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // A client collected in a forked child must not drop its parent's pool.
        retire(self.pool.swap(None));
    }
}

impl Engine {
    /// Check a request locally and return the future that runs it.
    #[allow(clippy::too_many_arguments)]
    fn exchange(
        &self,
        runtime: &ProcessRuntime,
        method: &str,
        url: &str,
        headers: &Bound<'_, PyAny>,
        body: Option<&Bound<'_, PyAny>>,
        timeouts: (Option<f64>, Option<f64>, Option<f64>, Option<f64>),
        follow_redirects: bool,
        max_redirects: usize,
        stream: bool,
        fill_in_caller: bool,
    ) -> PyResult<impl std::future::Future<Output = Result<Outcome, Error>> + Send + 'static> {
        let method = Method::from_bytes(method.as_bytes()).map_err(|_| {
            Error::new(
                ErrorKind::LocalProtocol,
                format!("Illegal method {method:?}"),
            )
        })?;
        let url = self.urls.parse(url)?;
        let headers = parse_headers(headers)?;
        let (connect, read, write, pool_timeout) = timeouts;
        let options = Options {
            timeouts: Timeouts {
                connect: seconds(connect)?,
                read: seconds(read)?,
                write: seconds(write)?,
                pool: seconds(pool_timeout)?,
            },
            follow_redirects,
            max_redirects,
            stream,
            fill_in_caller,
        };
        let (body, streamed) = match body {
            None => (None, None),
            Some(body) => {
                if let Ok(bytes) = body.cast::<PyBytes>() {
                    (Some(body_bytes(bytes)), None)
                } else if let Ok(sender) = body.cast::<BodySender>() {
                    (None, Some(sender.get().take_engine_end()?))
                } else {
                    return Err(Error::new(
                        ErrorKind::LocalProtocol,
                        "a request body must be bytes or a BodySender",
                    )
                    .into());
                }
            }
        };
        let spec = RequestSpec {
            method,
            url,
            headers,
            body,
        };
        let pool = self.pool(runtime)?;
        let transport = exchange::Transport {
            client: pool.client.clone(),
            direct: pool.direct.clone(),
        };
        let limiter = pool.limiter.clone();
        // Boxed at once: the exchange's state machine is ~2 KiB, and the future
        // is moved several times on its way into a task, each move a memcpy
        // (perf: memmove under Pending::spawn_on, ~1.6 % of the loop thread).
        let exchange = Box::pin(exchange::run(transport, limiter, spec, streamed, options));
        Ok(async move { exchange.await.map(Outcome::Exchange) })
    }
}

#[pymethods]
impl Engine {
    #[new]
    #[pyo3(signature = (*, verify=true, ca_bundle_pem=None, identity_pem=None, http1=true, http2=false,
        max_connections=None, max_keepalive_connections=None, keepalive_expiry=None,
        connect_timeout=None, proxy=None, proxy_headers=None, local_address=None, uds=None,
        trust_env=true))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        verify: bool,
        ca_bundle_pem: Option<Vec<u8>>,
        identity_pem: Option<Vec<u8>>,
        http1: bool,
        http2: bool,
        max_connections: Option<usize>,
        max_keepalive_connections: Option<usize>,
        keepalive_expiry: Option<f64>,
        connect_timeout: Option<f64>,
        proxy: Option<String>,
        proxy_headers: Option<&Bound<'_, PyAny>>,
        local_address: Option<&str>,
        uds: Option<String>,
        trust_env: bool,
    ) -> PyResult<Self> {
        let proxy_headers = proxy_headers.map(parse_headers).transpose()?;
        let local_address = local_address
            .map(|address| {
                address.parse::<IpAddr>().map_err(|_| {
                    Error::new(
                        ErrorKind::LocalProtocol,
                        format!("local_address must be an IP address, not {address:?}"),
                    )
                })
            })
            .transpose()?;
        let config = PoolConfig {
            tls: TlsSettings {
                verify,
                ca_bundle_pem,
                identity_pem,
                http1,
                http2,
            },
            max_connections,
            max_keepalive_connections,
            keepalive_expiry: seconds(keepalive_expiry)?,
            connect_timeout: seconds(connect_timeout)?,
            proxy,
            proxy_headers,
            local_address,
            uds,
            trust_env,
        };
        // Build now so configuration errors (bad CA bundle, bad proxy URL)
        // surface at construction, as in httpx.
        let pool = config.build()?;
        Ok(Self {
            config,
            pool: ArcSwapOption::from_pointee(pool),
            urls: ParsedUrls::default(),
        })
    }

    /// Start a request on the runtime and return its `Pending`. Everything
    /// that can be checked locally (URL, scheme, header bytes) is checked
    /// here, before anything reaches the wire.
    #[pyo3(signature = (method, url, headers, body, timeouts, follow_redirects, max_redirects, stream=false))]
    #[allow(clippy::too_many_arguments)]
    fn start(
        &self,
        method: &str,
        url: &str,
        headers: &Bound<'_, PyAny>,
        body: Option<&Bound<'_, PyAny>>,
        timeouts: (Option<f64>, Option<f64>, Option<f64>, Option<f64>),
        follow_redirects: bool,
        max_redirects: usize,
        stream: bool,
    ) -> PyResult<Pending> {
        let runtime = runtime::current()?;
        let work = self.exchange(
            &runtime,
            method,
            url,
            headers,
            body,
            timeouts,
            follow_redirects,
            max_redirects,
            stream,
            false,
        )?;
        Ok(Pending::spawn_on(runtime, work))
    }

    /// The same request as `start`, run to completion by the calling thread
    /// (plain sync code only: not under gevent or eventlet, whose hub must
    /// keep running). Returns what `Pending.wait()` would.
    #[pyo3(signature = (method, url, headers, body, timeouts, follow_redirects, max_redirects, stream=false))]
    #[allow(clippy::too_many_arguments)]
    fn send(
        &self,
        py: Python<'_>,
        method: &str,
        url: &str,
        headers: &Bound<'_, PyAny>,
        body: Option<&Bound<'_, PyAny>>,
        timeouts: (Option<f64>, Option<f64>, Option<f64>, Option<f64>),
        follow_redirects: bool,
        max_redirects: usize,
        stream: bool,
    ) -> PyResult<Py<PyAny>> {
        let runtime = runtime::current()?;
        let driving = runtime.try_drive();
        let work = self.exchange(
            &runtime,
            method,
            url,
            headers,
            body,
            timeouts,
            follow_redirects,
            max_redirects,
            stream,
            // Only a caller that drives the runtime itself reads bodies.
            driving.is_some() && !stream,
        )?;
        match driving {
            Some(_claim) => pending::run_blocking(py, runtime.clone(), work),
            // Another thread drives the runtime: hand the request to it (or
            // to the driver thread) and sleep until it is done.
            None => Pending::spawn_on(runtime.clone(), work).wait(py),
        }
    }

    /// Drop the pool: idle connections close. In-flight requests finish on
    /// their own clone of it.
    fn close(&self) {
        retire(self.pool.swap(None));
    }

    /// Pid of the process that built the current pool (None once closed).
    #[getter]
    fn pool_pid(&self) -> Option<u32> {
        self.pool.load().as_ref().map(|p| p.pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(url: &str) -> Option<ErrorKind> {
        parse_url(url).err().map(|e| e.kind)
    }

    #[test]
    fn parsed_urls_are_the_parse_and_stay_bounded() {
        let urls = ParsedUrls::default();
        for round in 0..2 {
            let url = urls.parse("http://example.org:8080/a?b=c");
            assert_eq!(
                url.ok(),
                parse_url("http://example.org:8080/a?b=c").ok(),
                "{round}"
            );
        }
        assert!(urls.parse("ftp://example.org/").is_err());
        assert_eq!(urls.lock().len(), 1);
        for n in 0..PARSED_URLS_MAX + 3 {
            assert!(urls.parse(&format!("http://example.org/{n}")).is_ok());
        }
        assert!(urls.lock().len() <= PARSED_URLS_MAX);
    }

    #[test]
    fn idle_cap_is_soft_but_zero_disables_keep_alive() {
        assert_eq!(idle_cap(Some(20), Some(100)), 100);
        assert_eq!(idle_cap(Some(200), Some(100)), 200);
        assert_eq!(idle_cap(Some(0), Some(100)), 0);
        assert_eq!(idle_cap(Some(20), None), usize::MAX);
        assert_eq!(idle_cap(None, Some(100)), usize::MAX);
    }

    #[test]
    fn parse_url_maps_unreachable_urls_like_httpx() {
        assert_eq!(kind_of("http://127.0.0.1:8000/"), None);
        // httpx accepts both URLs and fails to connect.
        assert_eq!(
            kind_of("http://127.0.0.1:123456/"),
            Some(ErrorKind::Connect)
        );
        assert_eq!(kind_of("https://exam%20le.com/"), Some(ErrorKind::Connect));
        assert_eq!(kind_of("/relative"), Some(ErrorKind::UnsupportedProtocol));
        assert_eq!(
            kind_of("ftp://example.com/"),
            Some(ErrorKind::UnsupportedProtocol)
        );
    }
}
