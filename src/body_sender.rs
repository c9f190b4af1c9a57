//! `BodySender`: the caller's end of a streamed request body.
//!
//! The caller iterates its stream (a generator, a file, a multipart body) and
//! hands each chunk to `send()`, whose `Pending` completes once the chunk is
//! queued, so a sync, gevent, asyncio or trio caller waits the way it waits
//! for a response. The queue is short: memory stays bounded by a few chunks,
//! and a stalled connection pushes back on the caller. `send()` gives False
//! once the request no longer needs the body (it failed, timed out or was
//! answered), so the caller stops and collects the request's outcome.

use std::pin::pin;
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use futures_util::future::{select, Either};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use tokio::sync::{mpsc, watch};

use crate::errors::{Error, ErrorKind};
use crate::exchange::Outcome;
use crate::pending::Pending;
use crate::upload::ChannelBody;

/// Chunks queued between the caller and hyper.
const QUEUED_CHUNKS: usize = 4;

/// The engine's end: the body stream, and a guard whose drop tells waiting
/// senders that the request is over.
pub struct StreamedBody {
    pub body: ChannelBody,
    pub request_alive: watch::Sender<()>,
}

struct Ends {
    chunks: Option<mpsc::Sender<Bytes>>,
    engine_end: Option<StreamedBody>,
}

#[pyclass(frozen, module = "loopfree._loopfree")]
pub struct BodySender {
    ends: Mutex<Ends>,
    request_alive: watch::Receiver<()>,
}

impl BodySender {
    fn lock(&self) -> MutexGuard<'_, Ends> {
        self.ends
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The engine's end, once: a body can be sent by one request only.
    pub fn take_engine_end(&self) -> Result<StreamedBody, Error> {
        self.lock().engine_end.take().ok_or_else(|| {
            Error::new(
                ErrorKind::LocalProtocol,
                "this request body stream was already sent",
            )
        })
    }
}

#[pymethods]
impl BodySender {
    #[new]
    fn new() -> Self {
        let (chunks, receiver) = mpsc::channel(QUEUED_CHUNKS);
        let (alive_guard, request_alive) = watch::channel(());
        Self {
            ends: Mutex::new(Ends {
                chunks: Some(chunks),
                engine_end: Some(StreamedBody {
                    body: ChannelBody::new(receiver),
                    request_alive: alive_guard,
                }),
            }),
            request_alive,
        }
    }

    /// Queue one chunk. The `Pending` gives True once it is queued, False if
    /// the request no longer reads its body.
    fn send(&self, chunk: &Bound<'_, PyBytes>) -> PyResult<Pending> {
        let chunk = crate::engine::body_bytes(chunk);
        let chunks = self.lock().chunks.clone().ok_or_else(|| {
            Error::new(
                ErrorKind::LocalProtocol,
                "the request body was already finished",
            )
        })?;
        let mut request_alive = self.request_alive.clone();
        Ok(Pending::spawn(async move {
            let queued = chunks.send(chunk);
            // Only the guard's drop ends this wait: no value is ever sent.
            let request_over = async { while request_alive.changed().await.is_ok() {} };
            let accepted = match select(pin!(queued), pin!(request_over)).await {
                Either::Left((sent, _)) => sent.is_ok(),
                Either::Right(((), _)) => false,
            };
            Ok(Outcome::Accepted(accepted))
        })?)
    }

    /// The body is complete: the request's stream ends after the queued chunks.
    fn close(&self) {
        drop(self.lock().chunks.take());
    }
}
