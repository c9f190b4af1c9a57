//! The only module that starts, drives or spawns onto tokio's runtime (the
//! direct path opens its sockets with tokio's types, on this runtime).
//!
//! One process-wide runtime, started lazily on first use: a current-thread
//! runtime by default (`LOOPFREE_WORKER_THREADS=N>1` gives a multi-thread
//! one). A plain sync request is run by its caller's thread (`block_on`),
//! which drives the runtime meanwhile; everything else is spawned and driven
//! by the driver thread while any of it is alive (see [`Driver`]). Every handle lookup
//! compares the process id with the one the runtime was started in: after a
//! `fork()` the child has none of the parent's worker threads, so it abandons
//! the inherited runtime (leaks it: dropping it would join threads that do not
//! exist and hang) and starts a fresh one.
//!
//! The runtime also owns the *completion thread*: the one thread that takes the
//! GIL to run Python wake-up callbacks (trio tokens, gevent watchers, asyncio
//! loops that cannot watch a file descriptor; other asyncio loops are woken
//! through a `Doorbell` without the GIL). Tokio workers never take the GIL, so a Python
//! thread holding it cannot stall network I/O, and callbacks finished close
//! together are run under one GIL acquisition.

use std::future::Future;

pub use futures_util::future::AbortHandle;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use pyo3::prelude::*;

use crate::errors::{Error, ErrorKind};

/// A Python callable to run, with the GIL, on the completion thread.
pub type Callback = Py<PyAny>;

/// A runtime together with the process it belongs to.
pub struct ProcessRuntime {
    pid: u32,
    runtime: tokio::runtime::Runtime,
    /// Set for the default current-thread runtime: who drives it when no
    /// sync caller does.
    driver: Option<Arc<Driver>>,
    callbacks: mpsc::Sender<Callback>,
    /// Sync callers driving the runtime in `block_on` now (0 or 1).
    sync_drivers: AtomicUsize,
}

/// A sync caller's claim on driving the runtime; released when dropped.
pub struct DrivingGuard<'a>(&'a ProcessRuntime);

impl Drop for DrivingGuard<'_> {
    fn drop(&mut self) {
        if self.0.driver.is_some() {
            self.0.sync_drivers.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// The driver thread of a current-thread runtime.
///
/// A sync request is run by its own thread (`block_on`): that thread drives
/// the runtime, network I/O included, so a request costs no thread hand-off
/// (measured with `perf stat`: 4.0 context switches per sync request handed
/// to a worker thread, 1.0 run this way). Work that no
/// caller blocks on (async and gevent requests, streamed bodies) is spawned;
/// while any such task is alive, the driver thread drives the runtime in a
/// `block_on` of its own, and it sleeps when there is none. When both want
/// the runtime, tokio lets one drive and the other is woken as its I/O
/// completes.
struct Driver {
    spawned: AtomicUsize,
    wake: Mutex<()>,
    work_arrived: Condvar,
    all_done: tokio::sync::Notify,
    /// Work spawned from outside the runtime goes through this queue: a task
    /// on the runtime spawns it. Spawning from outside directly costs a
    /// wake-up syscall (eventfd write) per task; through the queue, only the
    /// first of a burst wakes that task (measured with strace: one write per
    /// async request before).
    jobs: tokio::sync::mpsc::UnboundedSender<Job>,
}

/// A spawned request, boxed to travel through the job queue.
type Job = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// Spawn what arrives in the job queue, from the runtime's own thread.
async fn spawn_jobs(mut jobs: tokio::sync::mpsc::UnboundedReceiver<Job>) {
    let mut batch = Vec::new();
    while jobs.recv_many(&mut batch, JOB_BATCH).await > 0 {
        for job in batch.drain(..) {
            tokio::spawn(job);
        }
    }
}

/// Jobs taken from the queue per turn of its task.
const JOB_BATCH: usize = 64;

impl Driver {
    fn task_started(&self) {
        if self.spawned.fetch_add(1, Ordering::SeqCst) == 0 {
            let _guard = self.wake.lock().unwrap_or_else(|p| p.into_inner());
            self.work_arrived.notify_one();
        }
    }

    fn task_ended(&self) {
        if self.spawned.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.all_done.notify_waiters();
        }
    }

    /// `runtime` is weak: after a fork the runtime belongs to nobody here.
    fn run(self: Arc<Self>, runtime: std::sync::Weak<ProcessRuntime>) {
        loop {
            {
                let mut guard = self.wake.lock().unwrap_or_else(|p| p.into_inner());
                while self.spawned.load(Ordering::SeqCst) == 0 {
                    guard = self
                        .work_arrived
                        .wait(guard)
                        .unwrap_or_else(|p| p.into_inner());
                }
            }
            let Some(rt) = runtime.upgrade() else { return };
            rt.runtime.block_on(async {
                loop {
                    let notified = self.all_done.notified();
                    let mut notified = std::pin::pin!(notified);
                    notified.as_mut().enable();
                    if self.spawned.load(Ordering::SeqCst) == 0 {
                        break;
                    }
                    notified.await;
                }
            });
        }
    }
}

/// Counts a spawned task as alive until it finishes or is aborted (dropped).
struct SpawnedGuard(Arc<Driver>);

impl Drop for SpawnedGuard {
    fn drop(&mut self) {
        self.0.task_ended();
    }
}

static CURRENT: ArcSwapOption<ProcessRuntime> = ArcSwapOption::const_empty();
/// Serialises runtime start-up only; never held while running user code.
static STARTING: Mutex<()> = Mutex::new(());
/// How many runtimes this process has abandoned after forks (for tests and docs).
static ABANDONED: AtomicUsize = AtomicUsize::new(0);

fn worker_threads() -> usize {
    std::env::var("LOOPFREE_WORKER_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        // One worker: the caller's Python thread needs the other core, and a
        // second worker adds a context switch per request (measured: 3 vs 4
        // voluntary switches and ~20 us more CPU per sync request).
        .unwrap_or(1)
}

/// The runtime for this process, started (or restarted after a fork) on demand.
pub fn current() -> Result<Arc<ProcessRuntime>, Error> {
    let pid = std::process::id();
    if let Some(rt) = CURRENT.load_full() {
        if rt.pid == pid {
            return Ok(rt);
        }
    }
    start(pid)
}

fn start(pid: u32) -> Result<Arc<ProcessRuntime>, Error> {
    // A poisoned lock only means another start-up panicked; the data is `()`.
    let _guard = STARTING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(rt) = CURRENT.load_full() {
        if rt.pid == pid {
            return Ok(rt);
        }
    }
    let cannot = |what: &str, e: std::io::Error| {
        Error::new(ErrorKind::Transport, format!("cannot start {what}: {e}"))
    };
    let workers = worker_threads();
    let runtime = if workers > 1 {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("loopfree-worker")
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
    .map_err(|e| cannot("runtime", e))?;
    let (sender, receiver) = mpsc::channel::<Callback>();
    std::thread::Builder::new()
        .name("loopfree-completer".into())
        .spawn(move || run_callbacks(receiver))
        .map_err(|e| cannot("thread", e))?;
    let driver = (workers == 1).then(|| {
        let (jobs, queued) = tokio::sync::mpsc::unbounded_channel();
        // Driven, like everything else, whenever anyone drives the runtime.
        runtime.spawn(spawn_jobs(queued));
        Arc::new(Driver {
            spawned: AtomicUsize::new(0),
            wake: Mutex::new(()),
            work_arrived: Condvar::new(),
            all_done: tokio::sync::Notify::new(),
            jobs,
        })
    });
    let fresh = Arc::new(ProcessRuntime {
        pid,
        runtime,
        driver: driver.clone(),
        callbacks: sender,
        sync_drivers: AtomicUsize::new(0),
    });
    if let Some(driver) = driver {
        let runtime = Arc::downgrade(&fresh);
        std::thread::Builder::new()
            .name("loopfree-worker".into())
            .spawn(move || driver.run(runtime))
            .map_err(|e| cannot("thread", e))?;
    }
    if let Some(inherited) = CURRENT.swap(Some(fresh.clone())) {
        // Inherited across fork(): its threads are gone in this process.
        std::mem::forget(inherited);
        ABANDONED.fetch_add(1, Ordering::Relaxed);
    }
    Ok(fresh)
}

/// Who may still take the GIL from a Rust frame once the interpreter exits.
///
/// When CPython finalizes, any thread other than the finalizing one that
/// tries to take the GIL is ended with `pthread_exit()`. The forced unwind
/// that starts cannot cross Rust frames: the process aborts ("FATAL:
/// exception not rethrown", SIGABRT). So from `begin_shutdown` (atexit, which
/// runs before CPython marks itself finalizing) on, no thread may re-take the
/// GIL from Rust, and `begin_shutdown` waits for those already doing so.
struct ExitState {
    shutting_down: bool,
    /// The thread running `atexit` (it finalizes, and may keep taking the GIL).
    finalizer: Option<std::thread::ThreadId>,
    /// Threads between "may take the GIL" and "back in Python".
    entering: usize,
}

static EXIT: Mutex<ExitState> = Mutex::new(ExitState {
    shutting_down: false,
    finalizer: None,
    entering: 0,
});
static EXIT_CHANGED: Condvar = Condvar::new();
/// How long exit waits for a wake-up callback to finish.
const EXIT_GRACE: Duration = Duration::from_secs(2);

fn exit_state() -> std::sync::MutexGuard<'static, ExitState> {
    EXIT.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Permission to take the GIL from Rust; released once back in Python.
pub struct PythonEntry(());

impl Drop for PythonEntry {
    fn drop(&mut self) {
        let mut state = exit_state();
        state.entering = state.entering.saturating_sub(1);
        // Only `begin_shutdown` waits for this, and only once exit has begun:
        // a notify costs a futex syscall even with nobody waiting (strace: one
        // per request on the 16-thread benchmark).
        if state.entering == 0 && state.shutting_down {
            EXIT_CHANGED.notify_all();
        }
    }
}

/// Ask to (re-)take the GIL. `None` once exit has begun and this is not the
/// finalizing thread: the caller must then never take the GIL again.
pub fn enter_python() -> Option<Option<PythonEntry>> {
    let mut state = exit_state();
    if !state.shutting_down {
        state.entering += 1;
        return Some(Some(PythonEntry(())));
    }
    if state.finalizer == Some(std::thread::current().id()) {
        return Some(None);
    }
    None
}

/// `enter_python` for a thread about to re-take the GIL: where that must not
/// happen any more (exit has begun, not the finalizing thread), park for good.
pub fn enter_python_or_park() -> Option<PythonEntry> {
    match enter_python() {
        Some(entry) => entry,
        None => park_until_exit(),
    }
}

/// For a thread that must never take the GIL again: the process is exiting.
pub fn park_until_exit() -> ! {
    loop {
        std::thread::park();
    }
}

/// Called from Python's `atexit`, with the GIL: from now on only this thread
/// takes the GIL from Rust. Waits (without the GIL, which they need) for the
/// threads that are already on their way back into Python.
pub fn begin_shutdown(py: Python<'_>) {
    {
        let mut state = exit_state();
        state.shutting_down = true;
        state.finalizer = Some(std::thread::current().id());
    }
    py.detach(|| {
        let state = exit_state();
        let _ = EXIT_CHANGED
            .wait_timeout_while(state, EXIT_GRACE, |s| s.entering > 0)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
    });
}

/// `ProcessRuntime::nudge` on this process's runtime, if it has one.
pub fn nudge() {
    if let Some(rt) = CURRENT.load_full() {
        if rt.pid == std::process::id() {
            rt.nudge();
        }
    }
}

/// Number of runtimes abandoned because this process was forked.
pub fn abandoned_runtimes() -> usize {
    ABANDONED.load(Ordering::Relaxed)
}

/// True when the runtime in use was started by this process.
pub fn belongs_to_this_process(pid: u32) -> bool {
    pid == std::process::id()
}

impl ProcessRuntime {
    /// Spawn a request future on the runtime. The returned handle aborts it
    /// (the future is dropped when its task is next polled).
    pub fn spawn<F>(&self, future: F) -> AbortHandle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (future, handle) = futures_util::future::abortable(future);
        match &self.driver {
            None => {
                self.runtime.spawn(future);
            }
            Some(driver) => {
                driver.task_started();
                let alive = SpawnedGuard(driver.clone());
                let job: Job = Box::pin(async move {
                    let _alive = alive;
                    let _ = future.await;
                });
                // Fails only when the queue's task is gone with its runtime;
                // the job is dropped (its guard counts it as ended).
                let _ = driver.jobs.send(job);
            }
        }
        handle
    }

    /// Let the runtime run whatever was just woken (a connection task whose
    /// request or pool was dropped closes its socket) even if no caller is
    /// driving it. When nobody drives it, this thread takes the turns itself
    /// (none of them waits: woken tasks run, I/O is polled without blocking,
    /// and no task there takes the GIL); waking the driver thread for them
    /// cost a futex, eventfd writes and two context switches per closed
    /// client (strace, a new client per request). Otherwise, or from inside
    /// the runtime, a short task makes the driver thread take the turns.
    pub fn nudge(&self) {
        if self.driver.is_none() {
            return; // worker threads run woken tasks by themselves
        }
        if tokio::runtime::Handle::try_current().is_err() {
            if let Some(_claim) = self.try_drive() {
                self.block_on(nudge_turns());
                return;
            }
        }
        let _ = self.spawn(nudge_turns());
    }

    /// Spawn work that a sync caller waits for in `block_on`: it is driven
    /// by that caller (or by whoever drives the runtime), so the driver
    /// thread is not woken for it.
    pub fn spawn_for_caller<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime.spawn(future)
    }

    /// Run `future` to completion on the calling thread, which drives the
    /// runtime meanwhile (or is woken by whoever drives it). The caller must
    /// not be inside the runtime, and must have released the GIL unless
    /// `future` never waits (as `nudge`'s turns).
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Claim the runtime for a sync caller that will drive it in `block_on`;
    /// None while another sync caller does, or while spawned work is in
    /// flight (then the request is better spawned too: one thread driving
    /// many requests batches their I/O, where callers taking turns at
    /// driving hand the runtime over at every response; measured on 16
    /// threads sharing a client). Always granted with a multi-thread runtime.
    pub fn try_drive(&self) -> Option<DrivingGuard<'_>> {
        let Some(driver) = &self.driver else {
            return Some(DrivingGuard(self));
        };
        if self.sync_drivers.fetch_add(1, Ordering::SeqCst) > 0
            || driver.spawned.load(Ordering::SeqCst) > 0
        {
            self.sync_drivers.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(DrivingGuard(self))
    }

    /// Queue a Python callback for the completion thread.
    pub fn run_callback(&self, callback: Callback) {
        if let Err(mpsc::SendError(callback)) = self.callbacks.send(callback) {
            // The completion thread is gone: only at process exit. Taking the
            // GIL from a worker could stall I/O, so leak the reference.
            std::mem::forget(callback);
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }
}

/// Yield to the scheduler once, so that it polls the I/O driver and runs the
/// tasks that woke (a connection task seeing its peer's FIN closes and leaves
/// the pool) before the caller goes on. One turn is enough: a yielded task is
/// deferred until after that poll, and tasks woken by it are queued ahead of
/// it (a second yield cost one more epoll_wait per request, strace).
pub async fn catch_up() {
    tokio::task::yield_now().await;
}

/// Spawn a background task (a connection's driver, a pool's reaper) on the
/// runtime without counting it as work that keeps the driver thread awake:
/// it runs whenever the runtime is driven, like hyper's own tasks. Works
/// from inside the runtime or outside it (a body dropped on a Python thread).
pub fn spawn_background<F>(future: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        handle.spawn(future);
    } else if let Ok(runtime) = current() {
        runtime.runtime.spawn(future);
    }
}

/// Wait for `duration` on the runtime's clock.
pub async fn sleep(duration: Duration) {
    tokio::time::sleep(duration).await;
}

/// Sleep helper for code outside this module that needs tokio time.
pub async fn timeout<F: Future>(
    limit: Option<Duration>,
    future: F,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, future).await,
        None => Ok(future.await),
    }
}

/// Await `future` until the instant `deadline`.
pub async fn timeout_at<F: Future>(
    deadline: std::time::Instant,
    future: F,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    tokio::time::timeout_at(deadline.into(), future).await
}

pub type Semaphore = tokio::sync::Semaphore;
pub type SemaphorePermit = tokio::sync::OwnedSemaphorePermit;

const MAX_CALLBACK_BATCH: usize = 64;

/// Scheduler turns a nudge gives woken tasks (a TLS shutdown takes a few).
const NUDGE_TURNS: usize = 4;

async fn nudge_turns() {
    for _ in 0..NUDGE_TURNS {
        tokio::task::yield_now().await;
    }
}

/// The completion thread: wait without the GIL, then run every callback that
/// is ready under a single GIL acquisition.
fn run_callbacks(receiver: mpsc::Receiver<Callback>) {
    while let Ok(first) = receiver.recv() {
        // Never `Some(None)` here: the completion thread does not run atexit.
        let Some(entry) = enter_python() else {
            // Exiting: without the GIL the reference cannot be released
            // safely, and leaking it is harmless now.
            std::mem::forget(first);
            park_until_exit();
        };
        Python::attach(|py| {
            let mut next = Some(first);
            let mut batch = 0;
            while let Some(callback) = next {
                if let Err(err) = callback.call0(py) {
                    // A wake-up callback must not fail; if it does, report it
                    // the way Python reports errors in callbacks.
                    err.write_unraisable(py, Some(callback.bind(py)));
                }
                drop(callback);
                batch += 1;
                // Bound the batch so other Python threads get the GIL back.
                next = if batch < MAX_CALLBACK_BATCH {
                    receiver.try_recv().ok()
                } else {
                    None
                };
            }
        });
        drop(entry);
    }
}
