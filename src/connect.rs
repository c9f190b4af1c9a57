//! Per-request connect timeouts, and the instant a request's connection was
//! ready.
//!
//! reqwest takes a connect timeout per client; httpx takes one per request.
//! A connector layer (`ConnectClockLayer`) reads the request's
//! [`ConnectClock`] from a task-local set around `execute()`, bounds the
//! connector (DNS, TCP, TLS, proxy handshake) by its timeout, and records
//! when the connection was ready. The head wait then starts its read bound
//! from that instant instead of adding the connect bound to it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tower_layer::Layer;
use tower_service::Service;

use crate::runtime;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

tokio::task_local! {
    static CURRENT_CLOCK: Arc<ConnectClock>;
}

/// One request's connect bound and progress.
#[derive(Debug)]
pub struct ConnectClock {
    timeout: Option<Duration>,
    origin: Instant,
    connecting: AtomicBool,
    /// Nanoseconds after `origin` at which the connection was ready; 0: not yet.
    ready_nanos: AtomicU64,
}

impl ConnectClock {
    pub fn new(timeout: Option<Duration>) -> Arc<Self> {
        Arc::new(Self {
            timeout,
            origin: Instant::now(),
            connecting: AtomicBool::new(false),
            ready_nanos: AtomicU64::new(0),
        })
    }

    /// Mark the connection ready now (a new one connected, or a pooled one
    /// was reused).
    pub fn mark_ready(&self) {
        let nanos = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        // 0 means "not yet": a connection ready within the first nanosecond counts as 1.
        let _ =
            self.ready_nanos
                .compare_exchange(0, nanos.max(1), Ordering::SeqCst, Ordering::SeqCst);
    }

    /// When the connection was ready, if it is.
    pub fn ready_at(&self) -> Option<Instant> {
        match self.ready_nanos.load(Ordering::SeqCst) {
            0 => None,
            nanos => Some(self.origin + Duration::from_nanos(nanos)),
        }
    }

    /// Whether this request asked the connector for a new connection.
    pub fn connecting(&self) -> bool {
        self.connecting.load(Ordering::SeqCst)
    }

    /// Run `future` (a request's `execute()`) with this clock visible to the
    /// connector layer.
    pub async fn scope<F: Future>(self: Arc<Self>, future: F) -> F::Output {
        CURRENT_CLOCK.scope(self, future).await
    }
}

/// Bound a new connection of the request being polled now: `connecting` runs
/// within the request's connect timeout and `client_limit`, whichever is
/// shorter, and the instant it succeeds is recorded on the request's clock.
/// The clock is taken now, when the connection is asked for: hyper may go on
/// polling the returned future in the background after a pooled connection
/// won the race. Resolves to None when the bound passed.
pub fn within_connect_bound<T, E>(
    client_limit: Option<Duration>,
    connecting: impl Future<Output = Result<T, E>>,
) -> impl Future<Output = Option<Result<T, E>>> {
    let clock = CURRENT_CLOCK.try_with(Arc::clone).ok();
    if let Some(clock) = &clock {
        clock.connecting.store(true, Ordering::SeqCst);
    }
    let limit = match (clock.as_ref().and_then(|c| c.timeout), client_limit) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    async move {
        let connected = runtime::timeout(limit, connecting).await.ok()?;
        if let (Ok(_), Some(clock)) = (&connected, &clock) {
            clock.mark_ready();
        }
        Some(connected)
    }
}

/// The connector layer installed on every pool.
#[derive(Debug, Clone, Copy)]
pub struct ConnectClockLayer;

impl<S> Layer<S> for ConnectClockLayer {
    type Service = ConnectClockService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ConnectClockService { inner }
    }
}

#[derive(Debug, Clone)]
pub struct ConnectClockService<S> {
    inner: S,
}

impl<S, R> Service<R> for ConnectClockService<S>
where
    S: Service<R, Error = BoxError>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, target: R) -> Self::Future {
        // Called while the request's task polls `execute()`: the task-local
        // is the request's own clock. (reqwest applies the client's connect
        // timeout itself.)
        let connecting = within_connect_bound(None, self.inner.call(target));
        Box::pin(async move {
            connecting.await.unwrap_or_else(|| {
                // reqwest reports an io::ErrorKind::TimedOut from its
                // connector as a connect timeout.
                Err(Box::new(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connect timed out",
                )))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_instant_is_recorded_once() {
        let clock = ConnectClock::new(None);
        assert!(clock.ready_at().is_none());
        clock.mark_ready();
        let first = clock.ready_at().unwrap();
        std::thread::sleep(Duration::from_millis(2));
        clock.mark_ready();
        assert_eq!(clock.ready_at(), Some(first));
    }
}
