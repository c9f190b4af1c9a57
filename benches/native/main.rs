//! bench-native: the native Rust ceiling for loopfree's benchmarks.
//!
//! It drives bench-server with reqwest (the same pinned version and features
//! as loopfree's core), configured like loopfree's defaults (TCP_NODELAY, at
//! most 100 requests in flight through a semaphore, 20 idle connections kept
//! per host), on a current-thread tokio runtime by default: pinned to one CPU
//! with `taskset -c 0`, that is the fastest a Rust client can be there.
//!
//! One invocation = one measurement, like one Python worker of
//! `benches/run.py`: build the client, warm up for `--warmup` seconds, then
//! run the closed-loop workload for `--duration` seconds and print ONE JSON
//! line with the same keys the Python workers print.
//!
//! Modes:
//! - `get`: GET `--url` from `--concurrency` tasks (1 = sequential); body
//!   length must equal `--expect-len` when given;
//! - `upload`: POST `--size` bytes to `--url` (bench-server's `/sink`);
//! - `newclient`: build a new client for every GET, drop it afterwards;
//! - `construct`: build clients (the first one untimed), report µs per build.
//!
//! `--engine hyper` (mode `get`, plain HTTP/1.1 only) bypasses reqwest: each
//! request goes straight to a hyper `client::conn::http1` connection taken
//! from a minimal pool (a Vec of idle connections). No redirects, proxies,
//! timeouts, cookies or URL parsing per request: it measures what reqwest's
//! own per-request layer costs, i.e. how much faster than `native` an engine
//! written directly on hyper could be at best.
//!
//! `--h2` uses HTTP/2 prior knowledge (h2c, one connection); `--ca PATH`
//! trusts that PEM CA (for https URLs).

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Semaphore;

struct Args {
    mode: String,
    url: String,
    concurrency: usize,
    duration: f64,
    warmup: f64,
    h2: bool,
    ca: Option<String>,
    size: usize,
    expect_len: Option<usize>,
    server_pid: Option<u32>,
    threads: usize,
    max_connections: usize,
    max_idle: usize,
    count: usize,
    engine: String,
}

fn usage() -> ! {
    eprintln!(
        "usage: bench-native --mode get|upload|newclient|construct --url URL \
         [--concurrency 1] [--duration 1.0] [--warmup 0.3] [--h2] [--ca PEM] [--size BYTES] \
         [--expect-len N] [--server-pid PID] [--threads 1] [--max-connections 100] \
         [--max-idle 20] [--count 200] [--engine reqwest|hyper]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut args = Args {
        mode: "get".into(),
        url: String::new(),
        concurrency: 1,
        duration: 1.0,
        warmup: 0.3,
        h2: false,
        ca: None,
        size: 0,
        expect_len: None,
        server_pid: None,
        threads: 1,
        max_connections: 100,
        max_idle: 20,
        count: 200,
        engine: "reqwest".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--mode" => args.mode = value(),
            "--url" => args.url = value(),
            "--concurrency" => args.concurrency = value().parse().unwrap_or_else(|_| usage()),
            "--duration" => args.duration = value().parse().unwrap_or_else(|_| usage()),
            "--warmup" => args.warmup = value().parse().unwrap_or_else(|_| usage()),
            "--h2" => args.h2 = true,
            "--ca" => args.ca = Some(value()),
            "--size" => args.size = value().parse().unwrap_or_else(|_| usage()),
            "--expect-len" => args.expect_len = Some(value().parse().unwrap_or_else(|_| usage())),
            "--server-pid" => args.server_pid = Some(value().parse().unwrap_or_else(|_| usage())),
            "--threads" => args.threads = value().parse().unwrap_or_else(|_| usage()),
            "--max-connections" => {
                args.max_connections = value().parse().unwrap_or_else(|_| usage())
            }
            "--max-idle" => args.max_idle = value().parse().unwrap_or_else(|_| usage()),
            "--count" => args.count = value().parse().unwrap_or_else(|_| usage()),
            "--engine" => args.engine = value(),
            _ => usage(),
        }
    }
    if args.url.is_empty() {
        usage();
    }
    args
}

// ----------------------------------------------------------------- metrics

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if rc != 0 {
        return f64::NAN;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn status_kb(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn reset_peak_rss() {
    // "5" resets VmHWM to the current RSS (Linux >= 4.0); best effort.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn server_cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    // Fields after the ")" of the command name: state is field 3, utime 14, stime 15.
    let rest = text.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some((utime + stime) / ticks)
}

/// CPU seconds all CPUs spent busy (from /proc/stat), to spot foreign load.
fn system_busy_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = text
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    let busy = |i: usize| fields.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal
    let total = busy(0) + busy(1) + busy(2) + busy(5) + busy(6) + busy(7);
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(total as f64 / ticks)
}

// ----------------------------------------------------------------- client

/// What a client is built from (kept to build one per request in `newclient`).
#[derive(Clone)]
struct ClientConfig {
    h2: bool,
    ca: Option<String>,
    max_idle: usize,
}

fn build_client(config: &ClientConfig) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .pool_max_idle_per_host(config.max_idle)
        .timeout(Duration::from_secs(60));
    builder = if config.h2 {
        builder.http2_prior_knowledge()
    } else {
        builder.http1_only()
    };
    if let Some(path) = &config.ca {
        let pem = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| e.to_string())?;
        builder = builder.add_root_certificate(cert);
    }
    builder.build().map_err(|e| e.to_string())
}

#[derive(Default, Clone, Copy)]
struct Tally {
    ops: u64,
    errors: u64,
    bytes: u64,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.ops += other.ops;
        self.errors += other.errors;
        self.bytes += other.bytes;
    }
}

/// `--engine hyper`: idle HTTP/1.1 connections to the one server, reused LIFO.
struct HyperPool {
    address: std::net::SocketAddr,
    uri: hyper::Uri,
    host: hyper::header::HeaderValue,
    idle: std::sync::Mutex<Vec<HyperConnection>>,
    max_idle: usize,
}

type HyperConnection = hyper::client::conn::http1::SendRequest<http_body_util::Empty<Bytes>>;

impl HyperPool {
    fn new(url: &str, max_idle: usize) -> Result<Self, String> {
        let uri: hyper::Uri = url.parse().map_err(|e| format!("bad url {url}: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err("--engine hyper takes http:// URLs only".into());
        }
        let authority = uri.authority().ok_or("url has no host")?.clone();
        let address = std::net::ToSocketAddrs::to_socket_addrs(&(
            authority.host(),
            authority.port_u16().unwrap_or(80),
        ))
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("url's host has no address")?;
        let host =
            hyper::header::HeaderValue::from_str(authority.as_str()).map_err(|e| e.to_string())?;
        Ok(Self {
            address,
            uri,
            host,
            idle: std::sync::Mutex::new(Vec::new()),
            max_idle,
        })
    }

    async fn checkout(&self) -> Result<HyperConnection, String> {
        loop {
            let pooled = self.idle.lock().map_err(|e| e.to_string())?.pop();
            match pooled {
                Some(mut connection) => {
                    if connection.ready().await.is_ok() {
                        return Ok(connection);
                    }
                }
                None => break,
            }
        }
        let stream = tokio::net::TcpStream::connect(self.address)
            .await
            .map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let io = hyper_util::rt::TokioIo::new(stream);
        let (connection, driver) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(driver);
        Ok(connection)
    }

    fn checkin(&self, connection: HyperConnection) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < self.max_idle && !connection.is_closed() {
                idle.push(connection);
            }
        }
    }

    async fn get(&self) -> Result<Vec<u8>, String> {
        use http_body_util::BodyExt;
        let mut connection = self.checkout().await?;
        let request = hyper::Request::get(self.uri.clone())
            .header(hyper::header::HOST, self.host.clone())
            .body(http_body_util::Empty::new())
            .map_err(|e| e.to_string())?;
        let response = connection
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        if response.status() != hyper::StatusCode::OK {
            return Err(format!("status {}", response.status()));
        }
        let capacity = response
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
            .unwrap_or(0)
            .min(1 << 30);
        let mut body = Vec::with_capacity(capacity);
        let mut incoming = response.into_body();
        while let Some(frame) = incoming.frame().await {
            if let Ok(data) = frame.map_err(|e| e.to_string())?.into_data() {
                body.extend_from_slice(&data);
            }
        }
        // The body is read to its end: the connection is ready for the next request.
        self.checkin(connection);
        Ok(body)
    }
}

struct Job {
    hyper: Option<HyperPool>,
    client: reqwest::Client,
    url: String,
    mode: String,
    body: Bytes,
    expect_len: Option<usize>,
    limiter: Arc<Semaphore>,
    config: ClientConfig,
}

async fn one(job: &Job, client: &reqwest::Client) -> Result<u64, String> {
    let _permit = job.limiter.acquire().await.map_err(|e| e.to_string())?;
    if let Some(pool) = &job.hyper {
        let body = pool.get().await?;
        return check_len(job, &body).map(|()| body.len() as u64);
    }
    let request = if job.mode == "upload" {
        client.post(&job.url).body(job.body.clone())
    } else {
        client.get(&job.url)
    };
    let response = request.send().await.map_err(|e| e.to_string())?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(format!("status {}", response.status()));
    }
    let body = read_body(response).await?;
    check_len(job, &body)?;
    let moved = if job.mode == "upload" {
        job.body.len()
    } else {
        body.len()
    };
    Ok(moved as u64)
}

fn check_len(job: &Job, body: &[u8]) -> Result<(), String> {
    match job.expect_len {
        Some(expect) if body.len() != expect => {
            Err(format!("got {} bytes, expected {expect}", body.len()))
        }
        _ => Ok(()),
    }
}

/// The whole body in one buffer, sized from Content-Length when there is one
/// (what a careful client does; `Response::bytes()` grows its buffer instead).
async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let capacity = response.content_length().unwrap_or(0).min(1 << 30) as usize;
    let mut body = Vec::with_capacity(capacity);
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

async fn worker(job: Arc<Job>, deadline: Instant) -> Tally {
    let mut tally = Tally::default();
    while Instant::now() < deadline {
        let outcome = if job.mode == "newclient" {
            match build_client(&job.config) {
                Ok(client) => one(&job, &client).await,
                Err(err) => Err(err),
            }
        } else {
            one(&job, &job.client).await
        };
        match outcome {
            Ok(bytes) => {
                tally.ops += 1;
                tally.bytes += bytes;
            }
            Err(_) => {
                tally.errors += 1;
                // Do not spin on a dead server.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    tally
}

async fn run_for(job: &Arc<Job>, concurrency: usize, seconds: f64) -> Tally {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let handles: Vec<_> = (0..concurrency.max(1))
        .map(|_| tokio::spawn(worker(job.clone(), deadline)))
        .collect();
    let mut total = Tally::default();
    for handle in handles {
        match handle.await {
            Ok(tally) => total.add(tally),
            Err(_) => total.errors += 1,
        }
    }
    total
}

fn emit(fields: Vec<(&str, serde_json::Value)>) {
    let map: serde_json::Map<String, serde_json::Value> = fields
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}", serde_json::Value::Object(map));
    let _ = stdout.flush();
}

async fn construct(args: &Args, config: &ClientConfig) -> Result<(), String> {
    let _first = build_client(config)?;
    let mut samples = Vec::with_capacity(args.count);
    let deadline = Instant::now() + Duration::from_secs_f64(args.duration.max(0.1));
    while samples.len() < args.count && Instant::now() < deadline {
        let t0 = Instant::now();
        let client = build_client(config)?;
        samples.push(t0.elapsed().as_secs_f64() * 1e6);
        drop(client);
    }
    samples.sort_by(f64::total_cmp);
    let median = samples.get(samples.len() / 2).copied().unwrap_or(f64::NAN);
    emit(vec![
        ("ops", samples.len().into()),
        ("errors", 0.into()),
        ("construct_us", median.into()),
        (
            "construct_min_us",
            samples.first().copied().unwrap_or(f64::NAN).into(),
        ),
    ]);
    Ok(())
}

async fn run(args: Args) -> Result<(), String> {
    let config = ClientConfig {
        h2: args.h2,
        ca: args.ca.clone(),
        max_idle: args.max_idle,
    };
    if args.mode == "construct" {
        return construct(&args, &config).await;
    }
    if !matches!(args.mode.as_str(), "get" | "upload" | "newclient") {
        return Err(format!("unknown mode {:?}", args.mode));
    }
    let hyper = match args.engine.as_str() {
        "reqwest" => None,
        "hyper" if args.mode == "get" && !args.h2 && args.ca.is_none() => {
            Some(HyperPool::new(&args.url, args.max_idle)?)
        }
        "hyper" => return Err("--engine hyper runs mode get over plain HTTP/1.1 only".into()),
        other => return Err(format!("unknown engine {other:?}")),
    };
    let job = Arc::new(Job {
        hyper,
        client: build_client(&config)?,
        url: args.url.clone(),
        mode: args.mode.clone(),
        body: Bytes::from(vec![b'u'; args.size]),
        expect_len: args.expect_len,
        limiter: Arc::new(Semaphore::new(args.max_connections.max(1))),
        config,
    });
    reset_peak_rss();
    let base = status_kb("VmRSS:");
    // One request first, so an h2 client opens exactly one connection.
    one(&job, &job.client).await?;
    let _ = run_for(&job, args.concurrency, args.warmup).await;

    let rss0 = status_kb("VmRSS:");
    let srv0 = server_cpu_seconds(args.server_pid);
    let busy0 = system_busy_seconds();
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let tally = run_for(&job, args.concurrency, args.duration).await;
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let busy = match (busy0, system_busy_seconds()) {
        (Some(a), Some(b)) => serde_json::Value::from(b - a),
        _ => serde_json::Value::Null,
    };
    let srv = match (srv0, server_cpu_seconds(args.server_pid)) {
        (Some(a), Some(b)) => serde_json::Value::from(b - a),
        _ => serde_json::Value::Null,
    };
    emit(vec![
        ("ops", tally.ops.into()),
        ("errors", tally.errors.into()),
        ("bytes", tally.bytes.into()),
        ("elapsed", elapsed.into()),
        ("cpu_s", cpu.into()),
        ("base_kb", base.into()),
        ("rss0_kb", rss0.into()),
        ("hwm_kb", status_kb("VmHWM:").into()),
        ("rss1_kb", status_kb("VmRSS:").into()),
        ("srv_cpu_s", srv),
        ("sys_busy_s", busy),
    ]);
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
            eprintln!("bench-native: cannot start runtime: {err}");
            std::process::exit(1);
        }
    };
    if let Err(err) = runtime.block_on(run(args)) {
        eprintln!("bench-native: {err}");
        std::process::exit(1);
    }
}
