//! bench-server: a small, fast hyper 1.x server for loopfree's benchmarks.
//!
//! Three listeners on 127.0.0.1 (ports picked by the OS unless given):
//! - `h1`:  HTTP/1.1 keep-alive, plain TCP;
//! - `h2c`: HTTP/2 with prior knowledge, plain TCP;
//! - `tls`: rustls, ALPN `h2` + `http/1.1`, with a CA and a leaf certificate
//!   generated at start (rcgen). The CA is written as PEM to `--ca-out` (a
//!   temporary file by default) so Python clients can verify against it.
//!
//! On start it prints ONE JSON line on stdout:
//! `{"h1": port, "h2c": port, "tls": port, "ca": "/path/ca.pem", "pid": pid, "threads": n}`.
//!
//! Endpoints (every response is pre-built where it can be):
//! - `GET /bytes/0|1k|64k|1m|16m` (or `/bytes/<n>`): that many bytes, Content-Length;
//! - `POST /echo`: streams the request body back as the response body;
//! - `POST /sink`: reads and discards the request body, answers its length;
//! - `GET /delay?ms=N`: answers after N ms (at most 60 000);
//! - `GET /gzip`: 1 KiB of text, gzip-encoded (`Content-Encoding: gzip`);
//! - `GET /` and `GET /auth`: the two upstream endpoints that
//!   `examples/flask_shared_client.py` calls (JSON, same shapes as
//!   `examples/upstream.py`);
//! - `GET /stats`: `{"connections": accepted, "requests": served}`.
//!
//! `--threads 1` (the default) runs everything on a current-thread tokio
//! runtime, so `taskset -c 1 bench-server` keeps the server on one CPU.
//! `--stdin-watchdog` exits when stdin reaches EOF (the harness closes it),
//! and `--max-seconds` (default 7200) bounds the lifetime in any case.

use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};

type Body = BoxBody<Bytes, hyper::Error>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;
const MAX_DYNAMIC_BYTES: usize = 256 * MIB;
const AUTH_TOKEN: &str = "Bearer demo-token";

struct Args {
    host: String,
    h1_port: u16,
    h2c_port: u16,
    tls_port: u16,
    threads: usize,
    ca_out: Option<PathBuf>,
    stdin_watchdog: bool,
    max_seconds: u64,
}

fn usage() -> ! {
    eprintln!(
        "usage: bench-server [--host 127.0.0.1] [--h1-port N] [--h2c-port N] [--tls-port N] \
         [--threads 1] [--ca-out PATH] [--stdin-watchdog] [--max-seconds 7200]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut args = Args {
        host: "127.0.0.1".into(),
        h1_port: 0,
        h2c_port: 0,
        tls_port: 0,
        threads: 1,
        ca_out: None,
        stdin_watchdog: false,
        max_seconds: 7200,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--host" => args.host = value(),
            "--h1-port" => args.h1_port = value().parse().unwrap_or_else(|_| usage()),
            "--h2c-port" => args.h2c_port = value().parse().unwrap_or_else(|_| usage()),
            "--tls-port" => args.tls_port = value().parse().unwrap_or_else(|_| usage()),
            "--threads" => args.threads = value().parse().unwrap_or_else(|_| usage()),
            "--ca-out" => args.ca_out = Some(PathBuf::from(value())),
            "--stdin-watchdog" => args.stdin_watchdog = true,
            "--max-seconds" => args.max_seconds = value().parse().unwrap_or_else(|_| usage()),
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    args
}

/// Everything the handlers share: pre-built bodies and counters.
struct State {
    b0: Bytes,
    b1k: Bytes,
    b64k: Bytes,
    b1m: Bytes,
    b16m: Bytes,
    gzip: Bytes,
    root: Bytes,
    auth_ok: Bytes,
    auth_denied: Bytes,
    connections: AtomicU64,
    requests: AtomicU64,
}

impl State {
    fn new() -> Result<Self, BoxError> {
        let filled = |n: usize| Bytes::from(vec![b'x'; n]);
        Ok(Self {
            b0: Bytes::new(),
            b1k: filled(KIB),
            b64k: filled(64 * KIB),
            b1m: filled(MIB),
            b16m: filled(16 * MIB),
            gzip: gzip_body()?,
            root: Bytes::from_static(br#"{"ok":true,"n":1}"#),
            auth_ok: Bytes::from_static(br#"{"user":"demo"}"#),
            auth_denied: Bytes::from_static(br#"{"error":"unauthorized"}"#),
            connections: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        })
    }
}

/// 1 KiB of plain text, gzip-compressed once at start.
fn gzip_body() -> Result<Bytes, BoxError> {
    use flate2::write::GzEncoder;
    use flate2::Compression;
    let line = b"The quick brown fox jumps over the lazy dog. loopfree benchmark text.\n";
    let text: Vec<u8> = line.iter().copied().cycle().take(KIB).collect();
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(&text)?;
    Ok(Bytes::from(encoder.finish()?))
}

fn full(bytes: Bytes) -> Body {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

fn respond(status: StatusCode, content_type: &'static str, bytes: Bytes) -> Response<Body> {
    let mut response = Response::new(full(bytes));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn octets(bytes: Bytes) -> Response<Body> {
    respond(StatusCode::OK, "application/octet-stream", bytes)
}

fn json(status: StatusCode, bytes: Bytes) -> Response<Body> {
    respond(status, "application/json", bytes)
}

fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn bytes_for(state: &State, size: &str) -> Option<Bytes> {
    Some(match size {
        "0" => state.b0.clone(),
        "1k" => state.b1k.clone(),
        "64k" => state.b64k.clone(),
        "1m" => state.b1m.clone(),
        "16m" => state.b16m.clone(),
        other => {
            let n: usize = other.parse().ok()?;
            if n > MAX_DYNAMIC_BYTES {
                return None;
            }
            Bytes::from(vec![b'x'; n])
        }
    })
}

async fn handle(req: Request<Incoming>, state: Arc<State>) -> Result<Response<Body>, Infallible> {
    state.requests.fetch_add(1, Ordering::Relaxed);
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let response = match (method, path.as_str()) {
        (Method::GET | Method::HEAD, p) if p.starts_with("/bytes/") => {
            match bytes_for(&state, &p["/bytes/".len()..]) {
                Some(bytes) => octets(bytes),
                None => respond(
                    StatusCode::NOT_FOUND,
                    "text/plain",
                    Bytes::from_static(b"no such size\n"),
                ),
            }
        }
        (Method::POST | Method::PUT, "/echo") => {
            // Stream the request body straight back. hyper copies the exact
            // size hint, so a Content-Length request gets a Content-Length reply.
            let mut response = Response::new(req.into_body().boxed());
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            response
        }
        (Method::POST | Method::PUT, "/sink") => {
            let mut body = req.into_body();
            let mut total: u64 = 0;
            let mut failed = false;
            while let Some(frame) = body.frame().await {
                match frame {
                    Ok(frame) => {
                        if let Some(data) = frame.data_ref() {
                            total += data.len() as u64;
                        }
                    }
                    Err(_) => {
                        failed = true;
                        break;
                    }
                }
            }
            if failed {
                respond(
                    StatusCode::BAD_REQUEST,
                    "text/plain",
                    Bytes::from_static(b"body error\n"),
                )
            } else {
                respond(StatusCode::OK, "text/plain", Bytes::from(total.to_string()))
            }
        }
        (Method::GET, "/delay") => {
            let ms: u64 = query_param(req.uri().query(), "ms")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
                .min(60_000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            octets(state.b0.clone())
        }
        (Method::GET, "/gzip") => {
            let mut response = respond(
                StatusCode::OK,
                "text/plain; charset=utf-8",
                state.gzip.clone(),
            );
            response
                .headers_mut()
                .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            response
        }
        (Method::GET, "/") => json(StatusCode::OK, state.root.clone()),
        (Method::GET, "/auth") => {
            let authorised = req
                .headers()
                .get(AUTHORIZATION)
                .is_some_and(|v| v.as_bytes() == AUTH_TOKEN.as_bytes());
            if authorised {
                json(StatusCode::OK, state.auth_ok.clone())
            } else {
                json(StatusCode::UNAUTHORIZED, state.auth_denied.clone())
            }
        }
        (Method::GET, "/stats") => {
            let body = format!(
                r#"{{"connections":{},"requests":{}}}"#,
                state.connections.load(Ordering::Relaxed),
                state.requests.load(Ordering::Relaxed)
            );
            json(StatusCode::OK, Bytes::from(body))
        }
        _ => respond(
            StatusCode::NOT_FOUND,
            "text/plain",
            Bytes::from_static(b"not found\n"),
        ),
    };
    Ok(response)
}

fn http2_builder() -> hyper::server::conn::http2::Builder<TokioExecutor> {
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .max_concurrent_streams(4096)
        .initial_stream_window_size(4 * MIB as u32)
        .initial_connection_window_size(32 * MIB as u32)
        .max_frame_size(64 * KIB as u32)
        .max_send_buf_size(4 * MIB);
    builder
}

fn http1_builder() -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.keep_alive(true);
    builder
}

#[derive(Clone, Copy)]
enum Kind {
    H1,
    H2c,
    Tls,
}

async fn serve_plain(stream: TcpStream, kind: Kind, state: Arc<State>) {
    let io = TokioIo::new(stream);
    let svc = service_fn(move |req| handle(req, state.clone()));
    // Errors here are client resets and the like: nothing to report.
    let _ = match kind {
        Kind::H2c => http2_builder().serve_connection(io, svc).await,
        _ => http1_builder().serve_connection(io, svc).await,
    };
}

async fn serve_tls(stream: TcpStream, acceptor: tokio_rustls::TlsAcceptor, state: Arc<State>) {
    let Ok(tls) = acceptor.accept(stream).await else {
        return;
    };
    let is_h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(tls);
    let svc = service_fn(move |req| handle(req, state.clone()));
    let _ = if is_h2 {
        http2_builder().serve_connection(io, svc).await
    } else {
        http1_builder().serve_connection(io, svc).await
    };
}

async fn accept_loop(
    listener: TcpListener,
    kind: Kind,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    state: Arc<State>,
) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                // EMFILE and friends: back off briefly instead of spinning.
                eprintln!("bench-server: accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        state.connections.fetch_add(1, Ordering::Relaxed);
        let state = state.clone();
        match (kind, &acceptor) {
            (Kind::Tls, Some(acceptor)) => {
                tokio::spawn(serve_tls(stream, acceptor.clone(), state));
            }
            _ => {
                tokio::spawn(serve_plain(stream, kind, state));
            }
        }
    }
}

/// A CA plus a leaf for `localhost` / `127.0.0.1` signed by it.
fn tls_config(ca_out: &std::path::Path) -> Result<rustls::ServerConfig, BoxError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "loopfree bench CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate()?;
    let mut leaf_params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf_params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let leaf_cert = leaf_params.signed_by(&leaf_key, &issuer)?;

    std::fs::write(ca_out, ca_cert.pem())?;

    let chain: Vec<CertificateDer<'static>> = vec![leaf_cert.der().clone(), ca_cert.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

async fn bind(host: &str, port: u16) -> Result<TcpListener, BoxError> {
    let addr: SocketAddr = format!("{host}:{port}").parse()?;
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    Ok(socket.listen(4096)?)
}

async fn run(args: Args) -> Result<(), BoxError> {
    let state = Arc::new(State::new()?);
    let ca_out = args.ca_out.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("loopfree-bench-ca-{}.pem", std::process::id()))
    });
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls_config(&ca_out)?));

    let h1 = bind(&args.host, args.h1_port).await?;
    let h2c = bind(&args.host, args.h2c_port).await?;
    let tls = bind(&args.host, args.tls_port).await?;
    let ready = format!(
        r#"{{"h1":{},"h2c":{},"tls":{},"ca":{},"pid":{},"threads":{}}}"#,
        h1.local_addr()?.port(),
        h2c.local_addr()?.port(),
        tls.local_addr()?.port(),
        serde_json::to_string(&ca_out.display().to_string())?,
        std::process::id(),
        args.threads,
    );
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{ready}")?;
        stdout.flush()?;
    }

    if args.stdin_watchdog {
        std::thread::spawn(|| {
            let mut buf = [0u8; 256];
            let mut stdin = std::io::stdin();
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => std::process::exit(0),
                    Ok(_) => {}
                }
            }
        });
    }

    tokio::spawn(accept_loop(h1, Kind::H1, None, state.clone()));
    tokio::spawn(accept_loop(h2c, Kind::H2c, None, state.clone()));
    tokio::spawn(accept_loop(tls, Kind::Tls, Some(acceptor), state.clone()));
    tokio::time::sleep(Duration::from_secs(args.max_seconds)).await;
    eprintln!("bench-server: --max-seconds reached, exiting");
    Ok(())
}

fn main() {
    let args = parse_args();
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("bench-server: cannot start runtime: {err}");
            std::process::exit(1);
        }
    };
    if let Err(err) = runtime.block_on(run(args)) {
        eprintln!("bench-server: {err}");
        std::process::exit(1);
    }
    // Do not wait for connection tasks at exit.
    runtime.shutdown_background();
}
