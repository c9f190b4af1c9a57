//! Request bodies as streams whose progress is visible: large in-memory
//! bodies are handed to hyper in slices, and streamed bodies (generators,
//! files) arrive chunk by chunk from the caller through a channel. A stalled
//! upload raises `WriteTimeout`, and the wait for the response head after the
//! last byte raises `ReadTimeout`, as in httpx. Time spent waiting for the
//! caller's next chunk is not a stall: httpx puts no timeout on a generator.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::mpsc;

/// Bodies at least this large are sliced; smaller ones go out in one write.
pub const SLICED_BODY_MIN: usize = 64 * 1024;
const SLICE: usize = 64 * 1024;

/// Shared between the body stream (polled by hyper) and the send loop.
#[derive(Debug)]
pub struct UploadProgress {
    origin: Instant,
    started: AtomicBool,
    done: AtomicBool,
    /// hyper asked for the next chunk and the caller has not sent it yet.
    awaiting_caller: AtomicBool,
    /// Nanoseconds after `origin` of the last slice hyper asked for.
    last_nanos: AtomicU64,
}

/// Where an upload stands, for choosing the timeout that applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadState {
    /// hyper has not asked for the body yet (still connecting).
    NotStarted,
    /// Writing; the instant of the last progress.
    Writing(Instant),
    /// hyper wants the next chunk of a streamed body; the caller owes it.
    AwaitingCaller,
    /// All bytes handed over at this instant; waiting for the response.
    Sent(Instant),
}

impl UploadProgress {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            origin: Instant::now(),
            started: AtomicBool::new(false),
            done: AtomicBool::new(false),
            awaiting_caller: AtomicBool::new(false),
            last_nanos: AtomicU64::new(0),
        })
    }

    fn touch(&self) {
        let nanos = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last_nanos.store(nanos, Ordering::SeqCst);
        self.started.store(true, Ordering::SeqCst);
    }

    pub fn state(&self) -> UploadState {
        if !self.started.load(Ordering::SeqCst) {
            return UploadState::NotStarted;
        }
        let last = self.origin + Duration::from_nanos(self.last_nanos.load(Ordering::SeqCst));
        if self.done.load(Ordering::SeqCst) {
            UploadState::Sent(last)
        } else if self.awaiting_caller.load(Ordering::SeqCst) {
            UploadState::AwaitingCaller
        } else {
            UploadState::Writing(last)
        }
    }
}

/// The body as a stream of zero-copy slices, recording progress.
pub struct SlicedBody {
    body: Bytes,
    offset: usize,
    progress: Arc<UploadProgress>,
}

impl SlicedBody {
    pub fn new(body: Bytes, progress: Arc<UploadProgress>) -> Self {
        Self {
            body,
            offset: 0,
            progress,
        }
    }
}

impl Stream for SlicedBody {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.progress.touch();
        let len = self.body.len();
        if self.offset >= len {
            self.progress.done.store(true, Ordering::SeqCst);
            return Poll::Ready(None);
        }
        let end = (self.offset + SLICE).min(len);
        let slice = self.body.slice(self.offset..end);
        self.offset = end;
        Poll::Ready(Some(Ok(slice)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.body.len().saturating_sub(self.offset).div_ceil(SLICE);
        (left, Some(left))
    }
}

/// A streamed body: chunks sent by the caller (`BodySender`), in order.
pub struct ChannelBody {
    chunks: mpsc::Receiver<Bytes>,
    progress: Arc<UploadProgress>,
}

impl ChannelBody {
    pub fn new(chunks: mpsc::Receiver<Bytes>) -> Self {
        Self {
            chunks,
            progress: UploadProgress::new(),
        }
    }

    pub fn progress(&self) -> Arc<UploadProgress> {
        self.progress.clone()
    }
}

impl Stream for ChannelBody {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.progress.touch();
        let polled = self.chunks.poll_recv(cx);
        let progress = &self.progress;
        match polled {
            Poll::Ready(Some(chunk)) => {
                progress.awaiting_caller.store(false, Ordering::SeqCst);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(None) => {
                progress.awaiting_caller.store(false, Ordering::SeqCst);
                progress.done.store(true, Ordering::SeqCst);
                Poll::Ready(None)
            }
            Poll::Pending => {
                progress.awaiting_caller.store(true, Ordering::SeqCst);
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[test]
    fn slices_cover_the_body_and_mark_progress() {
        let progress = UploadProgress::new();
        assert_eq!(progress.state(), UploadState::NotStarted);
        let body = Bytes::from(vec![7u8; SLICE * 2 + 10]);
        let mut stream = SlicedBody::new(body.clone(), progress.clone());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let parts: Vec<Bytes> = rt.block_on(async {
            let mut parts = Vec::new();
            while let Some(part) = stream.next().await {
                parts.push(part.unwrap());
                assert!(matches!(progress.state(), UploadState::Writing(_)));
            }
            parts
        });
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.concat(), body.to_vec());
        assert!(matches!(progress.state(), UploadState::Sent(_)));
    }

    #[test]
    fn channel_body_waits_for_the_caller_without_counting_a_stall() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let (tx, rx) = mpsc::channel(2);
            let mut body = ChannelBody::new(rx);
            let progress = body.progress();
            assert_eq!(progress.state(), UploadState::NotStarted);
            tx.send(Bytes::from_static(b"one")).await.unwrap();
            assert_eq!(body.next().await.unwrap().unwrap(), &b"one"[..]);
            assert!(matches!(progress.state(), UploadState::Writing(_)));
            // Nothing sent yet: hyper would park here, and the caller owes a chunk.
            let waker = futures_util::task::noop_waker();
            let mut cx = Context::from_waker(&waker);
            assert!(Pin::new(&mut body).poll_next(&mut cx).is_pending());
            assert_eq!(progress.state(), UploadState::AwaitingCaller);
            tx.send(Bytes::from_static(b"two")).await.unwrap();
            drop(tx);
            assert_eq!(body.next().await.unwrap().unwrap(), &b"two"[..]);
            assert!(body.next().await.is_none());
            assert!(matches!(progress.state(), UploadState::Sent(_)));
        });
    }
}
