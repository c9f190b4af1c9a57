//! `Pending`: the one completion mechanism shared by every calling context.
//!
//! A request always runs on the runtime. Its caller holds a `Pending` and is
//! woken in the way that suits it:
//! - sync code blocks in [`Pending::wait`] on a condition variable, without the
//!   GIL, and still runs Python signal handlers every few milliseconds;
//! - asyncio code has the runtime ring its loop's [`Doorbell`]
//!   ([`Pending::ring_when_done`]), without the GIL;
//! - trio, gevent and eventlet register a callback with
//!   [`Pending::add_done_callback`] that wakes their loop or hub from the
//!   completion thread.
//!
//! A `Pending` holds no reference to any event loop once it is done: the
//! callback is dropped as soon as it has run, or when the request is cancelled.

use std::future::{poll_fn, Future};
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use pyo3::prelude::*;

use crate::bytes_fill::bytes_filled_by;
use crate::doorbell::{Bell, Doorbell};
use crate::errors::{Error, ErrorKind};
use crate::exchange::{self, Outcome};
use crate::gil;
use crate::runtime::{self, Callback, ProcessRuntime};

/// How often a sync wait wakes to run Python signal handlers (Ctrl-C).
const SIGNAL_CHECK_INTERVAL: Duration = Duration::from_millis(20);

/// Who is told when a request finishes.
enum Waiter {
    /// Called with the GIL on the completion thread (gevent, eventlet, trio).
    Callback(Callback),
    /// Rung from the runtime without the GIL (asyncio loops).
    Bell(Arc<Bell>, u64),
}

enum Slot {
    Running { waiter: Option<Waiter> },
    Done(Box<Result<Outcome, Error>>),
    Taken,
}

struct Shared {
    slot: Mutex<Slot>,
    ready: Condvar,
    /// Threads blocked in `Pending::wait` (changed under `slot`'s lock): the
    /// condition variable is signalled only for them (a notify is a syscall
    /// even with nobody waiting, and async callers never wait on it).
    sleepers: std::sync::atomic::AtomicUsize,
}

impl Shared {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            slot: Mutex::new(Slot::Running { waiter: None }),
            ready: Condvar::new(),
            sleepers: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Slot> {
        // Poisoning cannot leave the slot half-written: every write is a
        // single assignment. Recover instead of panicking.
        self.slot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Store the outcome (first writer wins) and wake the caller.
    pub fn complete(&self, outcome: Result<Outcome, Error>, runtime: &ProcessRuntime) {
        match self.finish(outcome) {
            Some(Some(Waiter::Callback(callback))) => runtime.run_callback(callback),
            Some(Some(Waiter::Bell(bell, token))) => bell.ring(token),
            Some(None) | None => {}
        }
    }

    /// Store the outcome unless one is stored already (then None) and wake
    /// threads in `Pending::wait`; returns the waiter to tell, if any.
    fn finish(&self, outcome: Result<Outcome, Error>) -> Option<Option<Waiter>> {
        let waiter = {
            let mut slot = self.lock();
            match &mut *slot {
                Slot::Running { waiter } => {
                    let waiter = waiter.take();
                    *slot = Slot::Done(Box::new(outcome));
                    waiter
                }
                Slot::Done(_) | Slot::Taken => return None,
            }
        };
        self.wake_sleepers();
        Some(waiter)
    }

    /// Wake threads in `Pending::wait`; call after changing the slot. A
    /// sleeper registers under the lock before it checks the slot, so one
    /// that has not seen the change is counted here.
    fn wake_sleepers(&self) {
        if self.sleepers.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            self.ready.notify_all();
        }
    }

    fn is_done(&self) -> bool {
        !matches!(&*self.lock(), Slot::Running { .. })
    }
}

/// Run `work` on the calling thread for a plain sync caller: the GIL is
/// released, the thread drives the runtime itself (no hand-off to another
/// thread), and Python signal handlers run every few milliseconds; if one
/// raises (KeyboardInterrupt), the request is dropped and the exception
/// propagates. A panic in `work` becomes a `TransportError`.
pub fn run_blocking<F>(py: Python<'_>, runtime: Arc<ProcessRuntime>, work: F) -> PyResult<Py<PyAny>>
where
    F: Future<Output = Result<Outcome, Error>> + Send + 'static,
{
    // The exchange runs as a task next to the connection tasks, so that
    // waking one another stays in the scheduler's queue; only its end wakes
    // this thread (measured: a 16 MiB body read as the `block_on` future
    // itself was ~13 % slower, one wake-up syscall per chunk). It is spawned
    // from inside `block_on`, straight into the local queue: spawned from
    // outside, it cost an eventfd write and two more epoll_wait calls per
    // request (strace).
    let spawner = &runtime;
    let joined = async move {
        let task = AbortOnDrop(spawner.spawn_for_caller(AssertUnwindSafe(work).catch_unwind()));
        match task.await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(payload)) => Err(Error::from_panic(&*payload)),
            Err(join_error) => Err(Error::new(
                ErrorKind::Transport,
                format!("internal error in the loopfree engine: {join_error}"),
            )),
        }
    };
    let finished = block_checking_signals(py, &runtime, spin_then_wait(joined))
        .and_then(|done| done.map_err(PyErr::from))
        .and_then(|outcome| read_filled_body(py, &runtime, outcome));
    match finished {
        Ok(outcome) => outcome.into_python(py),
        Err(err) => {
            // A failed, timed-out or interrupted exchange dropped its
            // connection: let its task close the socket now rather than at
            // the next request.
            runtime::nudge();
            Err(err)
        }
    }
}

/// Read the body an exchange left on the wire for this thread (a large plain
/// one, see `exchange::BodyToFill`) into the `bytes` it returns, if any.
fn read_filled_body(
    py: Python<'_>,
    runtime: &ProcessRuntime,
    outcome: Outcome,
) -> PyResult<Outcome> {
    let Outcome::Exchange(mut exchange) = outcome else {
        return Ok(outcome);
    };
    let Some(fill) = exchange.take_fill() else {
        return Ok(Outcome::Exchange(exchange));
    };
    let mut elapsed = Duration::ZERO;
    let body = bytes_filled_by(
        py,
        fill.length(),
        |out| {
            elapsed = block_checking_signals(py, runtime, fill.read_into(out))??;
            Ok(())
        },
        || exchange::short_body().into(),
    )?;
    exchange.set_filled(body.unbind(), elapsed);
    Ok(Outcome::Exchange(exchange))
}

/// Sync waits poll before they sleep, for at most this long (microseconds;
/// `LOOPFREE_SPIN_US`, 0 turns it off), while recent waits were that short.
const DEFAULT_SPIN_US: u64 = 200;

/// Recent sync exchange durations, averaged (nanoseconds; 0: none yet).
static RECENT_EXCHANGE_NANOS: AtomicU64 = AtomicU64::new(0);

fn max_spin() -> Duration {
    static MAX: OnceLock<Duration> = OnceLock::new();
    *MAX.get_or_init(|| {
        let micros = std::env::var("LOOPFREE_SPIN_US")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(DEFAULT_SPIN_US);
        Duration::from_micros(micros)
    })
}

/// The running average after one more exchange took `sample` (weight 1/8).
fn next_average(average: u64, sample: u64) -> u64 {
    if average == 0 {
        return sample.max(1);
    }
    (average - average / 8).saturating_add(sample / 8).max(1)
}

/// How long a sync wait polls before sleeping: `max` while the recent
/// average exchange fits in it, else not at all (a remote server answering
/// in milliseconds is waited for asleep, with no CPU spent polling).
fn spin_budget(average: Duration, max: Duration) -> Duration {
    if average <= max {
        max
    } else {
        Duration::ZERO
    }
}

/// Run a sync exchange, polling the runtime (its I/O without blocking) for a
/// short while before the caller's thread goes to sleep in `epoll_wait`.
///
/// A fast server (loopback, a sidecar) answers within tens of microseconds,
/// and on this VM sleeping and being woken for that answer cost more than
/// the request itself (perf: 43 % of a sequential loop's CPU in the kernel's
/// wake-up and task-switch paths). Polling through that gap raised the `seq`
/// benchmark from 8.4-8.5k to 13.7-14.2k req/s for about 10 % more CPU per
/// request (63-65 vs 70-73 us; `LOOPFREE_SPIN_US=0` vs 200, 3 rounds each). Only the one thread that drives the
/// runtime for its own request polls, the GIL is released meanwhile, and
/// slow servers turn it off through the running average.
async fn spin_then_wait<F: Future>(future: F) -> F::Output {
    let started = Instant::now();
    let mut future = pin!(future);
    let average = Duration::from_nanos(RECENT_EXCHANGE_NANOS.load(Ordering::Relaxed));
    let until = started + spin_budget(average, max_spin());
    let output = loop {
        let polled = poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await;
        if let Poll::Ready(output) = polled {
            break output;
        }
        if Instant::now() >= until {
            break future.await;
        }
        // Deferred: the scheduler polls I/O without blocking, runs what
        // woke, then polls this again.
        runtime::catch_up().await;
    };
    let took = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let average = RECENT_EXCHANGE_NANOS.load(Ordering::Relaxed);
    RECENT_EXCHANGE_NANOS.store(next_average(average, took), Ordering::Relaxed);
    output
}

/// Block the calling thread on `future`, GIL released, driving the runtime;
/// Python signal handlers run every `SIGNAL_CHECK_INTERVAL`. If one raises,
/// `future` is dropped and the exception is returned as `Err`. A panic while
/// driving becomes a `TransportError`.
fn block_checking_signals<T, F>(
    py: Python<'_>,
    runtime: &ProcessRuntime,
    future: F,
) -> Result<Result<T, Error>, PyErr>
where
    F: Future<Output = Result<T, Error>> + Send,
    T: Send,
{
    gil::without_gil(py, move || {
        let drive = AssertUnwindSafe(|| {
            runtime.block_on(async {
                let mut future = pin!(future);
                loop {
                    if let Ok(done) =
                        runtime::timeout(Some(SIGNAL_CHECK_INTERVAL), &mut future).await
                    {
                        return Ok(done);
                    }
                    let entry = runtime::enter_python_or_park();
                    let checked = Python::attach(|py| py.check_signals());
                    drop(entry);
                    checked?;
                }
            })
        });
        std::panic::catch_unwind(drive)
            .unwrap_or_else(|payload| Ok(Err(Error::from_panic(&*payload))))
    })
}

/// A spawned task that is aborted if its caller stops waiting for it.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A request in flight on the runtime.
#[pyclass(frozen, module = "loopfree._loopfree")]
pub struct Pending {
    shared: Arc<Shared>,
    abort: runtime::AbortHandle,
    runtime: Arc<ProcessRuntime>,
}

impl Pending {
    /// Run `work` on this process's runtime. Its outcome, or a caught panic
    /// as a `TransportError`, completes the returned `Pending`.
    pub fn spawn<F>(work: F) -> Result<Self, Error>
    where
        F: Future<Output = Result<Outcome, Error>> + Send + 'static,
    {
        Ok(Self::spawn_on(runtime::current()?, work))
    }

    /// `spawn` on `runtime`, this process's (from `runtime::current`).
    pub fn spawn_on<F>(runtime: Arc<ProcessRuntime>, work: F) -> Self
    where
        F: Future<Output = Result<Outcome, Error>> + Send + 'static,
    {
        let shared = Shared::new();
        let task_shared = shared.clone();
        let task_runtime = runtime.clone();
        let abort = runtime.spawn(async move {
            let outcome = AssertUnwindSafe(work)
                .catch_unwind()
                .await
                .unwrap_or_else(|payload| Err(Error::from_panic(&*payload)));
            task_shared.complete(outcome, &task_runtime);
        });
        Self {
            shared,
            abort,
            runtime,
        }
    }

    /// Store `waiter` to be told at completion; returned instead when the
    /// request is done already (the caller tells it now).
    fn set_waiter(&self, waiter: Waiter) -> Option<Waiter> {
        let mut slot = self.shared.lock();
        match &mut *slot {
            Slot::Running { waiter: stored } => {
                *stored = Some(waiter);
                None
            }
            Slot::Done(_) | Slot::Taken => Some(waiter),
        }
    }

    fn take_result(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let taken = {
            let mut slot = self.shared.lock();
            match std::mem::replace(&mut *slot, Slot::Taken) {
                Slot::Done(outcome) => Some(*outcome),
                other => {
                    *slot = other;
                    None
                }
            }
        };
        match taken {
            Some(Ok(outcome)) => outcome.into_python(py),
            Some(Err(err)) => Err(err.into()),
            None => Err(Error::new(
                ErrorKind::Transport,
                "the response is not available: it was already taken or is still running",
            )
            .into()),
        }
    }
}

#[pymethods]
impl Pending {
    /// Block until the response arrives, without the GIL. Signal handlers run
    /// every few milliseconds; if one raises (KeyboardInterrupt), the request
    /// is cancelled and the exception propagates.
    pub fn wait(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        loop {
            let (done, entry) = gil::without_gil(py, || {
                let sleepers = &self.shared.sleepers;
                let slot = self.shared.lock();
                sleepers.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let (slot, _) = self
                    .shared
                    .ready
                    .wait_timeout_while(slot, SIGNAL_CHECK_INTERVAL, |s| {
                        matches!(s, Slot::Running { .. })
                    })
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                sleepers.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                let done = !matches!(&*slot, Slot::Running { .. });
                drop(slot);
                // About to re-take the GIL. Once the interpreter exits, a
                // thread other than the finalizing one must not: CPython
                // would end it with pthread_exit through these Rust frames
                // and abort the process. Such a thread (a daemon thread
                // still waiting) sleeps until the process is gone.
                (done, runtime::enter_python_or_park())
            });
            drop(entry);
            if done {
                return self.take_result(py);
            }
            if let Err(interrupt) = py.check_signals() {
                self.cancel(py);
                return Err(interrupt);
            }
        }
    }

    /// Run `callback()` (with the GIL, on the completion thread) once the
    /// request is done; at once, on this thread, if it is done already.
    fn add_done_callback(&self, py: Python<'_>, callback: Py<PyAny>) -> PyResult<()> {
        if let Some(Waiter::Callback(callback)) = self.set_waiter(Waiter::Callback(callback)) {
            callback.call0(py)?;
        }
        Ok(())
    }

    /// Ring `doorbell` with `token` once the request is done (from the
    /// runtime, without the GIL); at once if it is done already.
    fn ring_when_done(&self, doorbell: &Doorbell, token: u64) {
        if let Some(Waiter::Bell(bell, token)) =
            self.set_waiter(Waiter::Bell(doorbell.bell(), token))
        {
            bell.ring(token);
        }
    }

    /// Cancel the request: the task is dropped on the runtime, which closes
    /// its connection instead of returning it half-read to the pool. Any
    /// registered callback is dropped without being called.
    // `_py`: the GIL is held, so the callback can be released right here.
    fn cancel(&self, _py: Python<'_>) {
        self.abort.abort();
        let cancelled = Error::new(ErrorKind::Cancelled, "the request was cancelled");
        // Release the callback (and the loop it references) while we hold the GIL.
        drop(self.shared.finish(Err(cancelled)));
    }

    fn done(&self) -> bool {
        self.shared.is_done()
    }

    /// The response tuple, or the mapped exception. Only valid once done.
    fn result(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.take_result(py)
    }

    /// Pid of the process whose runtime runs this request (for fork tests).
    #[getter]
    fn runtime_pid(&self) -> u32 {
        self.runtime.pid()
    }
}

#[cfg(test)]
mod spin_tests {
    use super::*;

    #[test]
    fn average_starts_at_the_first_sample_and_moves_an_eighth() {
        assert_eq!(next_average(0, 8_000), 8_000);
        assert_eq!(next_average(8_000, 16_000), 9_000);
        assert_eq!(next_average(0, 0), 1); // 0 stays "no sample yet"
    }

    #[test]
    fn slow_exchanges_turn_the_spin_off_and_fast_ones_back_on() {
        let max = Duration::from_micros(200);
        assert_eq!(spin_budget(Duration::from_micros(80), max), max);
        assert_eq!(spin_budget(Duration::from_millis(3), max), Duration::ZERO);
        assert_eq!(spin_budget(Duration::ZERO, Duration::ZERO), Duration::ZERO);
        // A server gone slow is waited for asleep within a few requests.
        let mut average = 80_000;
        let mut requests = 0;
        while spin_budget(Duration::from_nanos(average), max) > Duration::ZERO {
            average = next_average(average, 5_000_000);
            requests += 1;
        }
        assert!(requests <= 2, "{requests}");
    }
}
