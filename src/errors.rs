//! The single error type of the engine and its mapping onto httpx's exception
//! tree, which is declared in Python (`loopfree._exceptions`).
//!
//! Transport failures are classified by one pure function,
//! [`classify`], from facts gathered off the error's source chain (reqwest's,
//! or hyper's and the socket's on the direct path) and the phase of the
//! exchange in which it happened.

use std::error::Error as StdError;
use std::fmt;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

/// Which httpx exception class an error maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    ConnectTimeout,
    ReadTimeout,
    WriteTimeout,
    PoolTimeout,
    Connect,
    Read,
    Write,
    RemoteProtocol,
    LocalProtocol,
    Proxy,
    UnsupportedProtocol,
    Decoding,
    TooManyRedirects,
    InvalidUrl,
    /// Any other transport failure (httpx's `TransportError`).
    Transport,
    /// The request was cancelled by its caller; never surfaces as an error
    /// from a live wait, only from `result()` after `cancel()`.
    Cancelled,
}

impl ErrorKind {
    /// Name of the exception class in `loopfree._exceptions`.
    pub fn python_name(self) -> &'static str {
        match self {
            Self::ConnectTimeout => "ConnectTimeout",
            Self::ReadTimeout => "ReadTimeout",
            Self::WriteTimeout => "WriteTimeout",
            Self::PoolTimeout => "PoolTimeout",
            Self::Connect => "ConnectError",
            Self::Read => "ReadError",
            Self::Write => "WriteError",
            Self::RemoteProtocol => "RemoteProtocolError",
            Self::LocalProtocol => "LocalProtocolError",
            Self::Proxy => "ProxyError",
            Self::UnsupportedProtocol => "UnsupportedProtocol",
            Self::Decoding => "DecodingError",
            Self::TooManyRedirects => "TooManyRedirects",
            Self::InvalidUrl => "InvalidURL",
            Self::Transport => "TransportError",
            Self::Cancelled => "TransportError",
        }
    }
}

/// An engine error: the httpx class it maps to and a message for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// Classify a reqwest failure raised in `phase`.
    pub fn from_reqwest(err: &reqwest::Error, phase: Phase) -> Self {
        let facts = Facts::gather(err);
        let kind = classify(&facts, phase);
        Self::new(kind, facts.message)
    }

    /// A failure of a request on the direct path (`crate::direct`), which has
    /// no reqwest error around hyper's or the socket's: `connect` says it
    /// happened while opening the connection. Same classifier, same facts.
    pub fn from_direct(err: &(dyn StdError + 'static), connect: bool, phase: Phase) -> Self {
        let mut facts = Facts {
            connect,
            ..Facts::default()
        };
        facts.read_chain(Some(err));
        Self::new(classify(&facts, phase), facts.message)
    }

    /// The direct path's connect timeout (reqwest reports its own as a
    /// timed-out connect error: the same facts).
    pub fn connect_timed_out() -> Self {
        let facts = Facts {
            connect: true,
            timeout: true,
            ..Facts::default()
        };
        Self::new(classify(&facts, Phase::Send), "connect timed out")
    }

    /// A panic caught on the runtime; reported as a transport failure so it
    /// never reaches Python as `PanicException` (a `BaseException`).
    pub fn from_panic(payload: &(dyn std::any::Any + Send)) -> Self {
        let text = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        Self::new(
            ErrorKind::Transport,
            format!("internal error in the loopfree engine: {text}"),
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<Error> for PyErr {
    fn from(err: Error) -> PyErr {
        Python::attach(|py| to_pyerr(py, &err))
    }
}

fn to_pyerr(py: Python<'_>, err: &Error) -> PyErr {
    let class = py
        .import("loopfree._exceptions")
        .and_then(|module| module.getattr(err.kind.python_name()));
    match class {
        Ok(class) => match class.call1((err.message.clone(),)) {
            Ok(instance) => PyErr::from_value(instance),
            Err(e) => e,
        },
        // Only if the Python package is broken: still not a panic.
        Err(_) => PyRuntimeError::new_err(err.message.clone()),
    }
}

/// The stage of an exchange in which a failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Connecting, writing the request and waiting for the response head.
    Send,
    /// Reading the response body.
    Read,
}

/// What the error chain says about a failure, independent of reqwest's types
/// so that [`classify`] can be tested as a pure function.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Facts {
    pub timeout: bool,
    pub connect: bool,
    pub proxy: bool,
    pub body: bool,
    pub decode: bool,
    pub io_kinds: Vec<std::io::ErrorKind>,
    pub hyper_parse: bool,
    pub hyper_incomplete: bool,
    pub hyper_closed: bool,
    pub hyper_user: bool,
    /// The proxy answered a CONNECT with a non-2xx status, or demanded auth.
    pub tunnel_refused: bool,
    /// The proxy closed a CONNECT without answering.
    pub tunnel_eof: bool,
    /// The proxy itself could not be reached (not a proxy protocol failure).
    pub proxy_unreachable: bool,
    pub message: String,
}

impl Facts {
    fn gather(err: &reqwest::Error) -> Self {
        let mut facts = Facts {
            timeout: err.is_timeout(),
            connect: err.is_connect(),
            body: err.is_body(),
            decode: err.is_decode(),
            ..Facts::default()
        };
        facts.read_chain(err.source());
        if facts.message.is_empty() {
            facts.message = err.to_string();
        }
        facts
    }

    /// Read the facts off every error in the chain from `first` on, and
    /// join their messages (without repeats) into `message`.
    fn read_chain(&mut self, first: Option<&(dyn StdError + 'static)>) {
        let mut messages = Vec::new();
        let mut source = first;
        while let Some(cause) = source {
            let text = cause.to_string();
            let lower = text.to_ascii_lowercase();
            if lower.contains("proxy") {
                self.proxy = true;
            }
            // hyper-util reports proxy failures only in its messages.
            self.tunnel_refused |= lower.contains("tunnel error: unsuccessful")
                || lower.contains("proxy authorization required")
                || lower.contains("proxy response headers too long");
            self.tunnel_eof |= lower.contains("tunnel error: unexpected end of file");
            self.proxy_unreachable |= lower.contains("failed to create underlying connection");
            if let Some(io) = cause.downcast_ref::<std::io::Error>() {
                self.io_kinds.push(io.kind());
            }
            if let Some(h) = cause.downcast_ref::<hyper_error::Error>() {
                self.hyper_parse |= h.is_parse() || h.is_parse_status();
                self.hyper_incomplete |= h.is_incomplete_message();
                self.hyper_closed |= h.is_closed() || h.is_canceled();
                self.hyper_user |= h.is_user();
            }
            if !messages.contains(&text) {
                messages.push(text);
            }
            source = cause.source();
        }
        self.message = messages.join(": ");
    }
}

/// Re-export of hyper's error through reqwest's dependency, for downcasting.
mod hyper_error {
    pub use hyper::Error;
}

/// Map the facts of a failure to the httpx exception kind.
pub fn classify(facts: &Facts, phase: Phase) -> ErrorKind {
    use std::io::ErrorKind as Io;
    let has_io = |kinds: &[Io]| facts.io_kinds.iter().any(|k| kinds.contains(k));
    if facts.timeout {
        return if facts.connect {
            ErrorKind::ConnectTimeout
        } else {
            ErrorKind::ReadTimeout
        };
    }
    if facts.tunnel_eof {
        return ErrorKind::RemoteProtocol;
    }
    if facts.tunnel_refused {
        return ErrorKind::Proxy;
    }
    if facts.proxy_unreachable {
        return ErrorKind::Connect;
    }
    if facts.proxy && facts.connect {
        return ErrorKind::Proxy;
    }
    if facts.connect {
        return ErrorKind::Connect;
    }
    if facts.hyper_parse {
        return ErrorKind::RemoteProtocol;
    }
    if facts.hyper_user {
        return ErrorKind::LocalProtocol;
    }
    if facts.hyper_incomplete || (facts.hyper_closed && phase == Phase::Send) {
        // The peer went away mid-exchange; httpx reports this as
        // RemoteProtocolError ("Server disconnected without sending a response").
        return ErrorKind::RemoteProtocol;
    }
    if has_io(&[Io::BrokenPipe, Io::WriteZero]) {
        return ErrorKind::Write;
    }
    if has_io(&[Io::TimedOut]) {
        return ErrorKind::ReadTimeout;
    }
    if has_io(&[Io::UnexpectedEof]) {
        // The peer closed before the message's end (hyper: "end of file
        // before message length reached"); h11 says the same in httpx.
        return ErrorKind::RemoteProtocol;
    }
    if has_io(&[Io::ConnectionReset, Io::ConnectionAborted, Io::InvalidData]) {
        return if phase == Phase::Send {
            ErrorKind::RemoteProtocol
        } else {
            ErrorKind::Read
        };
    }
    // reqwest marks every failure while reading a body as "decode" (its own
    // decompression is off; ours raises Decoding itself), so the transport
    // facts above decide first: httpx reports a body cut short as
    // RemoteProtocolError and a reset as ReadError.
    if facts.decode {
        return ErrorKind::Decoding;
    }
    match phase {
        Phase::Send => ErrorKind::Transport,
        Phase::Read => ErrorKind::Read,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::ErrorKind as Io;

    fn facts() -> Facts {
        Facts::default()
    }

    #[test]
    fn body_read_failures_are_transport_errors_not_decoding() {
        // Regression: a body shorter than its Content-Length was DecodingError.
        let mut f = facts();
        f.decode = true;
        f.hyper_incomplete = true;
        assert_eq!(classify(&f, Phase::Read), ErrorKind::RemoteProtocol);
        let mut f = facts();
        f.decode = true;
        f.io_kinds = vec![Io::UnexpectedEof];
        assert_eq!(classify(&f, Phase::Read), ErrorKind::RemoteProtocol);
        let mut f = facts();
        f.decode = true;
        f.io_kinds = vec![Io::ConnectionReset];
        assert_eq!(classify(&f, Phase::Read), ErrorKind::Read);
        let mut f = facts();
        f.decode = true;
        assert_eq!(classify(&f, Phase::Read), ErrorKind::Decoding);
    }

    #[test]
    fn timeouts_split_by_connect() {
        let mut f = facts();
        f.timeout = true;
        assert_eq!(classify(&f, Phase::Send), ErrorKind::ReadTimeout);
        f.connect = true;
        assert_eq!(classify(&f, Phase::Send), ErrorKind::ConnectTimeout);
    }

    #[test]
    fn refused_connection_is_connect_error() {
        let mut f = facts();
        f.connect = true;
        f.io_kinds.push(Io::ConnectionRefused);
        assert_eq!(classify(&f, Phase::Send), ErrorKind::Connect);
    }

    #[test]
    fn proxy_failure_during_connect_is_proxy_error() {
        let mut f = facts();
        f.connect = true;
        f.proxy = true;
        assert_eq!(classify(&f, Phase::Send), ErrorKind::Proxy);
    }

    #[test]
    fn proxy_refusing_a_tunnel_is_proxy_error() {
        let mut f = facts();
        f.connect = true;
        f.tunnel_refused = true;
        assert_eq!(classify(&f, Phase::Send), ErrorKind::Proxy);
    }

    #[test]
    fn unreachable_socks_proxy_is_connect_error() {
        let mut f = facts();
        f.connect = true;
        f.proxy = true;
        f.proxy_unreachable = true;
        assert_eq!(classify(&f, Phase::Send), ErrorKind::Connect);
    }

    #[test]
    fn proxy_closing_a_tunnel_is_remote_protocol_error() {
        let mut f = facts();
        f.connect = true;
        f.proxy = true;
        f.tunnel_eof = true;
        assert_eq!(classify(&f, Phase::Send), ErrorKind::RemoteProtocol);
    }

    #[test]
    fn malformed_response_is_remote_protocol_error() {
        let mut f = facts();
        f.hyper_parse = true;
        assert_eq!(classify(&f, Phase::Send), ErrorKind::RemoteProtocol);
    }

    #[test]
    fn disconnect_before_response_is_remote_protocol_error() {
        let mut f = facts();
        f.hyper_incomplete = true;
        assert_eq!(classify(&f, Phase::Send), ErrorKind::RemoteProtocol);
        let mut g = facts();
        g.hyper_closed = true;
        assert_eq!(classify(&g, Phase::Send), ErrorKind::RemoteProtocol);
    }

    #[test]
    fn reset_while_reading_body_is_read_error() {
        let mut f = facts();
        f.io_kinds.push(Io::ConnectionReset);
        assert_eq!(classify(&f, Phase::Read), ErrorKind::Read);
        assert_eq!(classify(&f, Phase::Send), ErrorKind::RemoteProtocol);
    }

    #[test]
    fn broken_pipe_is_write_error() {
        let mut f = facts();
        f.io_kinds.push(Io::BrokenPipe);
        assert_eq!(classify(&f, Phase::Send), ErrorKind::Write);
    }

    #[test]
    fn unknown_failures_fall_back_by_phase() {
        assert_eq!(classify(&facts(), Phase::Send), ErrorKind::Transport);
        assert_eq!(classify(&facts(), Phase::Read), ErrorKind::Read);
    }

    #[test]
    fn every_kind_names_an_httpx_class() {
        let kinds = [
            ErrorKind::ConnectTimeout,
            ErrorKind::ReadTimeout,
            ErrorKind::WriteTimeout,
            ErrorKind::PoolTimeout,
            ErrorKind::Connect,
            ErrorKind::Read,
            ErrorKind::Write,
            ErrorKind::RemoteProtocol,
            ErrorKind::LocalProtocol,
            ErrorKind::Proxy,
            ErrorKind::UnsupportedProtocol,
            ErrorKind::Decoding,
            ErrorKind::TooManyRedirects,
            ErrorKind::InvalidUrl,
            ErrorKind::Transport,
        ];
        for kind in kinds {
            let name = kind.python_name();
            assert!(
                name.ends_with("Error")
                    || name.ends_with("Timeout")
                    || name == "UnsupportedProtocol"
                    || name == "TooManyRedirects"
                    || name == "InvalidURL"
            );
        }
    }

    #[test]
    fn panic_payload_becomes_transport_error() {
        let err = Error::from_panic(&"boom");
        assert_eq!(err.kind, ErrorKind::Transport);
        assert!(err.message.contains("boom"));
    }
}
