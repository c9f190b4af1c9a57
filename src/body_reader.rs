//! `BodyReader`: the body of a streamed response, read one chunk at a time.
//!
//! Each `next_chunk()` runs on the runtime like a request and is waited for
//! through a `Pending`, so streaming works the same from sync code, gevent,
//! asyncio and trio. Dropping or closing the reader before the end drops the
//! connection instead of returning it half-read to the pool.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use pyo3::prelude::*;

use crate::errors::{Error, ErrorKind, Phase};
use crate::exchange::{Outcome, StreamingBody};
use crate::pending::Pending;
use crate::runtime;

struct ReaderState {
    body: Mutex<Option<StreamingBody>>,
    closed: AtomicBool,
}

impl ReaderState {
    fn lock(&self) -> MutexGuard<'_, Option<StreamingBody>> {
        self.body
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[pyclass(frozen, module = "loopfree._loopfree")]
pub struct BodyReader {
    state: Arc<ReaderState>,
}

impl Drop for BodyReader {
    fn drop(&mut self) {
        self.discard();
    }
}

impl BodyReader {
    /// Drop an unfinished body; its connection task then closes the socket.
    fn discard(&self) {
        if self.state.lock().take().is_some() {
            runtime::nudge();
        }
    }

    pub fn new(body: StreamingBody) -> Self {
        Self {
            state: Arc::new(ReaderState {
                body: Mutex::new(Some(body)),
                closed: AtomicBool::new(false),
            }),
        }
    }
}

async fn read_chunk(state: Arc<ReaderState>) -> Result<Outcome, Error> {
    // Take the body out for the read so no lock is held across an await.
    let taken = state.lock().take();
    let Some(mut body) = taken else {
        return Ok(Outcome::Chunk(None));
    };
    let read = runtime::timeout(body.read_timeout, body.response.chunk()).await;
    match read {
        Ok(Ok(Some(chunk))) => {
            if !state.closed.load(Ordering::SeqCst) {
                *state.lock() = Some(body);
            }
            Ok(Outcome::Chunk(Some(chunk)))
        }
        // The end: dropping the finished body returns the connection to the pool.
        Ok(Ok(None)) => Ok(Outcome::Chunk(None)),
        Ok(Err(err)) => Err(Error::from_reqwest(&err, Phase::Read)),
        Err(_elapsed) => Err(Error::new(ErrorKind::ReadTimeout, "timed out")),
    }
}

#[pymethods]
impl BodyReader {
    /// Start reading the next chunk; the `Pending` gives bytes, or None at the end.
    fn next_chunk(&self) -> PyResult<Pending> {
        let state = self.state.clone();
        Ok(Pending::spawn(read_chunk(state))?)
    }

    /// Stop reading: an unfinished body closes its connection.
    fn close(&self) {
        self.state.closed.store(true, Ordering::SeqCst);
        self.discard();
    }

    #[getter]
    fn is_closed(&self) -> bool {
        self.state.closed.load(Ordering::SeqCst)
    }
}
