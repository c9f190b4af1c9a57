//! One request/response exchange on the runtime, redirects included: the hot
//! path. Everything here runs on tokio worker threads without the GIL; only
//! [`Exchange::into_python`] runs on the caller's thread with it.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_ENCODING, COOKIE};
use reqwest::{Method, StatusCode, Url, Version};

use crate::body_reader::BodyReader;
use crate::body_sender::StreamedBody;
use crate::bytes_fill::Filler;
use crate::connect::ConnectClock;
use crate::decode;
use crate::direct::DirectPool;
use crate::errors::{Error, ErrorKind, Phase};
use crate::redirect::{self, NextRequest};
use crate::runtime::{self, Semaphore, SemaphorePermit};
use crate::upload::{ChannelBody, SlicedBody, UploadProgress, UploadState, SLICED_BODY_MIN};

/// Per-request timeouts, as in httpx's `Timeout`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timeouts {
    pub connect: Option<Duration>,
    pub read: Option<Duration>,
    pub write: Option<Duration>,
    pub pool: Option<Duration>,
}

impl Timeouts {
    /// The deadline for the response head while the request body is not
    /// being written (none, small, or not asked for yet): the read bound, plus
    /// the write bound when there is a body, from the instant the connection
    /// was ready. While connecting, the connector layer enforces `connect`.
    fn head_deadline(&self, clock: &ConnectClock, has_body: bool) -> Option<Instant> {
        let ready = clock.ready_at()?;
        let read = self.read?;
        let write = if has_body {
            self.write.unwrap_or_default()
        } else {
            Duration::ZERO
        };
        Some(ready + read + write)
    }
}

/// What to send.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub timeouts: Timeouts,
    pub follow_redirects: bool,
    pub max_redirects: usize,
    /// Return after the head of the final response; the body is streamed.
    pub stream: bool,
    /// The caller's thread reads a large plain body itself, straight into
    /// the Python `bytes` it returns (see [`BodyToFill`]).
    pub fill_in_caller: bool,
}

/// One response, fully read and decoded.
pub struct Hop {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
    /// Body bytes received, before Content-Encoding decoding.
    downloaded: usize,
}

/// The request that produced a hop of the history.
pub struct SentRequest {
    method: Method,
    url: Url,
    headers: HeaderMap,
}

/// What a finished task hands back to its `Pending`.
// Moved once, straight into the boxed slot of its Pending.
#[allow(clippy::large_enum_variant)]
pub enum Outcome {
    Exchange(Exchange),
    /// One body chunk of a streamed response; None at the end.
    Chunk(Option<Bytes>),
    /// Whether a chunk of a streamed request body was queued.
    Accepted(bool),
}

impl Outcome {
    pub fn into_python(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        match self {
            Self::Exchange(exchange) => exchange.into_python(py),
            Self::Chunk(Some(chunk)) => Ok(PyBytes::new(py, &chunk).into_any().unbind()),
            Self::Chunk(None) => Ok(py.None()),
            Self::Accepted(accepted) => Ok(pyo3::types::PyBool::new(py, accepted)
                .to_owned()
                .into_any()
                .unbind()),
        }
    }
}

/// A response whose body is read chunk by chunk by the caller.
pub struct StreamingBody {
    pub response: reqwest::Response,
    pub read_timeout: Option<Duration>,
    /// Held until the body is finished or dropped: the connection is in use.
    pub permit: Option<SemaphorePermit>,
}

/// The outcome of [`run`].
pub struct Exchange {
    response: Hop,
    elapsed: Duration,
    /// Set when redirects were followed: the request behind `response`.
    final_request: Option<SentRequest>,
    history: Vec<(SentRequest, Hop)>,
    /// Set when a redirect was *not* followed (httpx's `next_request`).
    next_request: Option<NextRequest>,
    /// Set for `stream=True`: the body is still on the wire.
    streaming: Option<StreamingBody>,
    /// Set when the caller reads the final body itself.
    fill: Option<BodyToFill>,
    /// The body the caller read, once it has.
    filled: Option<Py<PyBytes>>,
}

/// A large body without Content-Encoding and with a known length, left on the
/// wire for the caller's thread to read straight into the final Python
/// `bytes`: one copy fewer than collecting it here first, and the peak memory
/// holds the body once instead of twice.
pub struct BodyToFill {
    response: reqwest::Response,
    length: usize,
    timeouts: Timeouts,
    started: Instant,
    /// Held until the body is read: the connection is in use.
    _permit: Option<SemaphorePermit>,
}

/// Smallest body read by the caller's thread; below it, the copy saved is
/// worth less than the wake-ups of reading outside a task.
const FILL_MIN: usize = 256 * 1024;

impl BodyToFill {
    /// The body's length when `response` qualifies.
    fn length_of(response: &reqwest::Response) -> Option<usize> {
        if response.headers().contains_key(CONTENT_ENCODING) {
            return None;
        }
        // The length hyper will deliver (0 for HEAD, 204 and 304), not the header.
        let length = usize::try_from(response.content_length()?).ok()?;
        (FILL_MIN..=MAX_PREALLOCATION)
            .contains(&length)
            .then_some(length)
    }

    pub fn length(&self) -> usize {
        self.length
    }

    /// Read the body into `out`. The read timeout applies to each chunk, as
    /// in [`read_body`]. Returns the time from the start of the exchange.
    pub async fn read_into(mut self, out: &mut Filler<'_>) -> Result<Duration, Error> {
        while let Some(chunk) = next_chunk(&mut self.response, None, &self.timeouts).await? {
            if !out.push(&chunk) {
                return Err(Error::new(
                    ErrorKind::RemoteProtocol,
                    "the server sent more than its Content-Length",
                ));
            }
        }
        Ok(self.started.elapsed())
    }
}

/// The error for a body that ended before its Content-Length.
pub fn short_body() -> Error {
    Error::new(
        ErrorKind::RemoteProtocol,
        "the server sent less than its Content-Length",
    )
}

async fn acquire(
    limiter: Option<Arc<Semaphore>>,
    pool: Option<Duration>,
) -> Result<Option<SemaphorePermit>, Error> {
    let Some(semaphore) = limiter else {
        return Ok(None);
    };
    match runtime::timeout(pool, semaphore.acquire_owned()).await {
        Ok(Ok(permit)) => Ok(Some(permit)),
        Ok(Err(_closed)) => Err(Error::new(ErrorKind::PoolTimeout, "the pool was closed")),
        Err(_elapsed) => Err(Error::new(ErrorKind::PoolTimeout, "timed out")),
    }
}

async fn send(
    transport: &Transport,
    spec: &RequestSpec,
    streamed: Option<ChannelBody>,
    timeouts: &Timeouts,
) -> Result<(reqwest::Response, Option<Arc<UploadProgress>>), Error> {
    let mut progress = None;
    let body = if let Some(streamed) = streamed {
        progress = Some(streamed.progress());
        Some(reqwest::Body::wrap_stream(streamed))
    } else if let Some(body) = &spec.body {
        if body.len() >= SLICED_BODY_MIN {
            let tracker = UploadProgress::new();
            let sliced = SlicedBody::new(body.clone(), tracker.clone());
            progress = Some(tracker);
            Some(reqwest::Body::wrap_stream(sliced))
        } else {
            Some(reqwest::Body::from(body.clone()))
        }
    } else {
        None
    };
    let has_body = progress.is_some() || spec.body.as_ref().is_some_and(|b| !b.is_empty());
    let clock = ConnectClock::new(timeouts.connect);
    let mut execute = pin!(clock.clone().scope(transport.execute(spec, body)));
    // The first poll either takes an idle pooled connection (the connector is
    // never asked, and the connection is ready now) or starts connecting.
    let first = poll_fn(|cx| Poll::Ready(execute.as_mut().poll(cx))).await;
    let outcome = match first {
        Poll::Ready(result) => Ok(result),
        Poll::Pending => {
            if !clock.connecting() {
                clock.mark_ready();
            }
            with_moving_deadline(execute, || match &progress {
                Some(progress) => upload_deadline(progress.state(), &clock, timeouts),
                None => (
                    timeouts.head_deadline(&clock, has_body),
                    ErrorKind::ReadTimeout,
                ),
            })
            .await
        }
    };
    match outcome {
        // The head can arrive while the body is still going out (hyper
        // returns it at once); the caller keeps watching the upload.
        Ok(Ok(response)) => Ok((response, progress)),
        Ok(Err(err)) => Err(err),
        Err(kind) => Err(Error::new(kind, "timed out")),
    }
}

/// The deadline that applies to an upload in `state`, and the error it raises.
fn upload_deadline(
    state: UploadState,
    clock: &ConnectClock,
    timeouts: &Timeouts,
) -> (Option<Instant>, ErrorKind) {
    match state {
        UploadState::NotStarted => (timeouts.head_deadline(clock, true), ErrorKind::ReadTimeout),
        UploadState::Writing(last) => (timeouts.write.map(|w| last + w), ErrorKind::WriteTimeout),
        UploadState::AwaitingCaller => (None, ErrorKind::WriteTimeout),
        UploadState::Sent(at) => (timeouts.read.map(|r| at + r), ErrorKind::ReadTimeout),
    }
}

/// Drive `future` against a deadline that upload progress can move: wake at
/// the deadline (or every `WATCH_INTERVAL`), and fail with the error kind of
/// the deadline in force only once it has really passed.
async fn with_moving_deadline<F: std::future::Future>(
    future: F,
    deadline: impl Fn() -> (Option<Instant>, ErrorKind),
) -> Result<F::Output, ErrorKind> {
    let mut future = std::pin::pin!(future);
    loop {
        let (due, _) = deadline();
        let check = Instant::now() + WATCH_INTERVAL;
        if let Ok(output) =
            runtime::timeout_at(due.map_or(check, |d| d.min(check)), &mut future).await
        {
            return Ok(output);
        }
        let (due, kind) = deadline();
        if due.is_some_and(|d| Instant::now() >= d) {
            return Err(kind);
        }
    }
}

/// How often an upload's progress is re-examined.
const WATCH_INTERVAL: Duration = Duration::from_millis(50);

/// Largest body buffer reserved up front from a Content-Length header.
const MAX_PREALLOCATION: usize = 256 * 1024 * 1024;

/// The next chunk of `response`'s body, None at its end. The read timeout
/// applies, or the write timeout while the request body is still being sent
/// (a stalled upload is a WriteTimeout).
async fn next_chunk(
    response: &mut reqwest::Response,
    upload: Option<&UploadProgress>,
    timeouts: &Timeouts,
) -> Result<Option<Bytes>, Error> {
    let waited = match upload.filter(|u| matches!(u.state(), UploadState::Writing(_))) {
        None => runtime::timeout(timeouts.read, response.chunk())
            .await
            .map_err(|_| ErrorKind::ReadTimeout),
        Some(upload) => {
            let started = Instant::now();
            with_moving_deadline(response.chunk(), || match upload.state() {
                UploadState::Writing(last) => {
                    (timeouts.write.map(|w| last + w), ErrorKind::WriteTimeout)
                }
                _ => (timeouts.read.map(|r| started + r), ErrorKind::ReadTimeout),
            })
            .await
        }
    };
    match waited {
        Ok(read) => read.map_err(|err| Error::from_reqwest(&err, Phase::Read)),
        Err(kind) => Err(Error::new(kind, "timed out")),
    }
}

async fn read_body(
    mut response: reqwest::Response,
    upload: Option<&UploadProgress>,
    timeouts: &Timeouts,
) -> Result<Hop, Error> {
    let status = response.status();
    let version = response.version();
    let headers = std::mem::take(response.headers_mut());
    // A declared length sizes the buffer once: growing by doubling would
    // copy a large body several times and hold two buffers at the peak.
    let declared = response
        .content_length()
        .and_then(|n| usize::try_from(n).ok())
        .map(|n| n.min(MAX_PREALLOCATION));
    // Keep a lone chunk as it is; copy only when the body comes in pieces.
    let mut first: Option<Bytes> = None;
    let mut rest: Option<BytesMut> = None;
    while let Some(chunk) = next_chunk(&mut response, upload, timeouts).await? {
        match (&mut first, &mut rest) {
            (None, _) => first = Some(chunk),
            (Some(head), None) => {
                let wanted = declared.unwrap_or(0).max(head.len() + chunk.len() * 2);
                let mut buf = BytesMut::with_capacity(wanted);
                buf.extend_from_slice(head);
                buf.extend_from_slice(&chunk);
                rest = Some(buf);
            }
            (Some(_), Some(buf)) => buf.extend_from_slice(&chunk),
        }
    }
    let raw = match rest {
        Some(buf) => buf.freeze(),
        None => first.unwrap_or_default(),
    };
    let encodings: Vec<&str> = headers
        .get_all(CONTENT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let downloaded = raw.len();
    let body = decode::decode(&encodings, raw)?;
    Ok(Hop {
        status,
        version,
        headers,
        body,
        downloaded,
    })
}

/// Where requests go: the direct path when it carries the request, else reqwest.
pub struct Transport {
    pub client: reqwest::Client,
    pub direct: Option<Arc<DirectPool>>,
}

impl Transport {
    /// Send one request and wait for its response head.
    async fn execute(
        &self,
        spec: &RequestSpec,
        body: Option<reqwest::Body>,
    ) -> Result<reqwest::Response, Error> {
        match &self.direct {
            Some(direct) if direct.carries(&spec.method, &spec.url) => {
                let body = body.unwrap_or_else(|| reqwest::Body::from(Bytes::new()));
                let mut request = http::Request::new(body);
                *request.method_mut() = spec.method.clone();
                *request.headers_mut() = spec.headers.clone();
                direct.send(&spec.url, request).await
            }
            _ => {
                let mut request = reqwest::Request::new(spec.method.clone(), spec.url.clone());
                *request.headers_mut() = spec.headers.clone();
                *request.body_mut() = body;
                self.client
                    .execute(request)
                    .await
                    .map_err(|err| Error::from_reqwest(&err, Phase::Send))
            }
        }
    }
}

/// Send `spec`, following redirects if asked, and read the whole response.
pub async fn run(
    transport: Transport,
    limiter: Option<Arc<Semaphore>>,
    mut spec: RequestSpec,
    streamed: Option<StreamedBody>,
    options: Options,
) -> Result<Exchange, Error> {
    // Dropped when this request ends, however it ends: the body's sender
    // then stops waiting for room in the queue.
    let (mut streamed_body, _request_alive) = match streamed {
        Some(StreamedBody {
            body,
            request_alive,
        }) => (Some(body), Some(request_alive)),
        None => (None, None),
    };
    // The runtime may not have been driven since the last request (nobody
    // drives it between sync calls): first let it take in what arrived
    // meanwhile, such as a server's FIN on an idle pooled connection, so the
    // request does not go out on a connection that is already closed.
    runtime::catch_up().await;
    // A streamed body goes out once: its redirects are not followed (the
    // caller's pipeline decides, as httpx does).
    let follow_redirects = options.follow_redirects && streamed_body.is_none();
    let permit = acquire(limiter, options.timeouts.pool).await?;
    let started = Instant::now();
    let mut history: Vec<(SentRequest, Hop)> = Vec::new();
    let mut cookies: Option<HeaderValue> = spec.headers.get(COOKIE).cloned();
    loop {
        if history.len() > options.max_redirects {
            return Err(Error::new(
                ErrorKind::TooManyRedirects,
                "Exceeded maximum allowed redirects.",
            ));
        }
        if !matches!(spec.url.scheme(), "http" | "https") {
            return Err(Error::new(
                ErrorKind::UnsupportedProtocol,
                format!(
                    "Request URL has an unsupported protocol '{}://'.",
                    spec.url.scheme()
                ),
            ));
        }
        let (response, upload) =
            send(&transport, &spec, streamed_body.take(), &options.timeouts).await?;
        cookies = redirect::merge_set_cookies(cookies.as_ref(), response.headers());
        let next = redirect::next_request(
            &spec.method,
            &spec.url,
            &spec.headers,
            response.status(),
            response.headers(),
            cookies.as_ref(),
        )?;
        let follow = next.is_some() && follow_redirects;
        if options.stream && !follow {
            let mut exchange = Exchange::new(Hop::head(&response, 0), started, history, spec, next);
            exchange.streaming = Some(StreamingBody {
                response,
                read_timeout: options.timeouts.read,
                permit,
            });
            return Ok(exchange);
        }
        let fill_length = (options.fill_in_caller && !follow && upload.is_none())
            .then(|| BodyToFill::length_of(&response))
            .flatten();
        if let Some(length) = fill_length {
            let hop = Hop::head(&response, length);
            let mut exchange = Exchange::new(hop, started, history, spec, next);
            exchange.fill = Some(BodyToFill {
                response,
                length,
                timeouts: options.timeouts,
                started,
                _permit: permit,
            });
            return Ok(exchange);
        }
        let hop = read_body(response, upload.as_deref(), &options.timeouts).await?;
        match next {
            Some(next) if follow_redirects => {
                let sent = SentRequest {
                    method: spec.method,
                    url: spec.url,
                    headers: spec.headers,
                };
                history.push((sent, hop));
                spec = RequestSpec {
                    body: if next.keep_body { spec.body } else { None },
                    method: next.method,
                    url: next.url,
                    headers: next.headers,
                };
            }
            next => return Ok(Exchange::new(hop, started, history, spec, next)),
        }
    }
}

impl Hop {
    /// The head of `response`; its body is still on the wire.
    fn head(response: &reqwest::Response, downloaded: usize) -> Self {
        Hop {
            status: response.status(),
            version: response.version(),
            headers: response.headers().clone(),
            body: Bytes::new(),
            downloaded,
        }
    }
}

impl Exchange {
    /// The outcome of an exchange started at `started` whose final response
    /// is `response` (read, unless `streaming` or `fill` is set afterwards).
    fn new(
        response: Hop,
        started: Instant,
        history: Vec<(SentRequest, Hop)>,
        spec: RequestSpec,
        next_request: Option<NextRequest>,
    ) -> Self {
        Exchange {
            response,
            elapsed: started.elapsed(),
            final_request: finished_request(&history, spec),
            history,
            next_request,
            streaming: None,
            fill: None,
            filled: None,
        }
    }
}

/// The request behind the final response, when redirects were followed.
fn finished_request(history: &[(SentRequest, Hop)], spec: RequestSpec) -> Option<SentRequest> {
    if history.is_empty() {
        None
    } else {
        Some(SentRequest {
            method: spec.method,
            url: spec.url,
            headers: spec.headers,
        })
    }
}

fn version_bytes(version: Version) -> &'static [u8] {
    match version {
        Version::HTTP_09 => b"HTTP/0.9",
        Version::HTTP_10 => b"HTTP/1.0",
        Version::HTTP_2 => b"HTTP/2",
        Version::HTTP_3 => b"HTTP/3",
        _ => b"HTTP/1.1",
    }
}

fn headers_to_python<'py>(py: Python<'py>, headers: &HeaderMap) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for (name, value) in headers {
        let pair = PyTuple::new(
            py,
            [
                PyBytes::new(py, name.as_str().as_bytes()),
                PyBytes::new(py, value.as_bytes()),
            ],
        )?;
        list.append(pair)?;
    }
    Ok(list)
}

/// Copy the body into a Python `bytes` and free the Rust buffer at once, so
/// the two copies coexist only for the copy itself.
fn body_to_python(py: Python<'_>, body: Bytes) -> Bound<'_, PyBytes> {
    let bytes = PyBytes::new(py, &body);
    drop(body);
    bytes
}

impl Hop {
    /// (status, http_version, reason_phrase, headers, body, bytes_downloaded);
    /// `filled` replaces the body when the caller read it.
    fn into_python<'py>(
        self,
        py: Python<'py>,
        filled: Option<Py<PyBytes>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let reason = self.status.canonical_reason().unwrap_or("");
        let body = match filled {
            Some(body) => body.into_bound(py),
            None => body_to_python(py, self.body),
        };
        (
            self.status.as_u16(),
            PyBytes::new(py, version_bytes(self.version)),
            PyBytes::new(py, reason.as_bytes()),
            headers_to_python(py, &self.headers)?,
            body,
            self.downloaded,
        )
            .into_pyobject(py)
    }
}

impl SentRequest {
    /// (method, url, headers)
    fn into_python<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        (
            self.method.as_str(),
            self.url.as_str(),
            headers_to_python(py, &self.headers)?,
        )
            .into_pyobject(py)
    }
}

impl Exchange {
    /// The body the caller's thread must read before `into_python`, if any.
    pub fn take_fill(&mut self) -> Option<BodyToFill> {
        self.fill.take()
    }

    /// Record the body the caller read, and the time to its end.
    pub fn set_filled(&mut self, body: Py<PyBytes>, elapsed: Duration) {
        self.filled = Some(body);
        self.elapsed = elapsed;
    }

    /// `(response, elapsed, final_request, history, next_request, reader)` where
    /// response is `(status, http_version, reason, headers, body)`, each
    /// request is `(method, url, headers)`, history is a list of
    /// `(request, response)`, next_request adds a keep-body flag and reader
    /// is a `BodyReader` for streamed responses (else None).
    pub fn into_python(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let reader = match self.streaming {
            Some(body) => Some(Py::new(py, BodyReader::new(body))?),
            None => None,
        };
        let history = PyList::empty(py);
        for (sent, hop) in self.history {
            history.append((sent.into_python(py)?, hop.into_python(py, None)?))?;
        }
        let final_request = match self.final_request {
            Some(sent) => Some(sent.into_python(py)?),
            None => None,
        };
        let next_request = match self.next_request {
            Some(next) => Some((
                next.method.as_str().to_owned(),
                next.url.as_str().to_owned(),
                headers_to_python(py, &next.headers)?,
                next.keep_body,
            )),
            None => None,
        };
        let tuple = (
            self.response.into_python(py, self.filled)?,
            self.elapsed.as_secs_f64(),
            final_request,
            history,
            next_request,
            reader,
        )
            .into_pyobject(py)?;
        Ok(tuple.into_any().unbind())
    }
}
