//! `Doorbell`: how a finished request wakes an asyncio loop without the GIL.
//!
//! The loop watches the doorbell's socket (`loop.add_reader`). A request that
//! finishes on the runtime appends its token to the doorbell's list and, if
//! the list was empty, writes one byte; the loop's reader takes the whole
//! list at once. No thread other than the loop's takes the GIL to wake it
//! (the completion thread and its GIL hand-offs are not involved), and a
//! burst of responses costs one byte and one loop wake-up.

use std::io::{ErrorKind as IoKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, MutexGuard};

use pyo3::prelude::*;

use crate::errors::{Error, ErrorKind};

pub struct Bell {
    rung: Mutex<Vec<u64>>,
    /// The end the runtime writes to.
    ringer: UnixStream,
    /// The end the loop reads from.
    listener: UnixStream,
}

impl Bell {
    fn new() -> std::io::Result<Self> {
        let (ringer, listener) = UnixStream::pair()?;
        ringer.set_nonblocking(true)?;
        listener.set_nonblocking(true)?;
        Ok(Self {
            rung: Mutex::new(Vec::new()),
            ringer,
            listener,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Vec<u64>> {
        // Every write is a push or a take: a poisoned list is still whole.
        self.rung
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Record `token` as finished; wake the loop if it has nothing pending.
    pub fn ring(&self, token: u64) {
        let mut rung = self.lock();
        let was_quiet = rung.is_empty();
        rung.push(token);
        if was_quiet {
            // Under the lock, so `take` cannot miss it. A full socket buffer
            // (WouldBlock) already holds an unread byte: the loop will wake.
            let _ = (&self.ringer).write(&[1]);
        }
    }
}

/// The loop-side handle of a bell.
#[pyclass(frozen, module = "loopfree._loopfree")]
pub struct Doorbell {
    bell: Arc<Bell>,
}

impl Doorbell {
    pub fn bell(&self) -> Arc<Bell> {
        self.bell.clone()
    }
}

#[pymethods]
impl Doorbell {
    #[new]
    fn new() -> PyResult<Self> {
        let bell = Bell::new().map_err(|e| {
            Error::new(ErrorKind::Transport, format!("cannot make a doorbell: {e}"))
        })?;
        Ok(Self {
            bell: Arc::new(bell),
        })
    }

    /// The file descriptor for the loop to watch.
    fn fileno(&self) -> i32 {
        self.bell.listener.as_raw_fd()
    }

    /// The tokens rung since the last call (oldest first), and the socket
    /// emptied. The socket is read first, under the lock, so a ring is
    /// either in this list or leaves a byte that wakes the loop again.
    fn take(&self) -> Vec<u64> {
        let mut rung = self.bell.lock();
        let mut sink = [0u8; 256];
        loop {
            match (&self.bell.listener).read(&mut sink) {
                Ok(n) if n == sink.len() => continue,
                Err(e) if e.kind() == IoKind::Interrupted => continue,
                // Emptied (a short read or WouldBlock), or an error that
                // reading again would not mend.
                _ => break,
            }
        }
        std::mem::take(&mut *rung)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doorbell() -> Doorbell {
        Doorbell {
            bell: Arc::new(Bell::new().unwrap()),
        }
    }

    /// Bytes waiting on the loop's end (read, so consumed).
    fn unread_bytes(doorbell: &Doorbell) -> usize {
        let mut sink = [0u8; 64];
        (&doorbell.bell.listener).read(&mut sink).unwrap_or(0)
    }

    #[test]
    fn a_burst_is_one_byte_and_one_take() {
        let doorbell = doorbell();
        for token in 1..=3 {
            doorbell.bell.ring(token);
        }
        assert_eq!(unread_bytes(&doorbell), 1);
        assert_eq!(doorbell.take(), vec![1, 2, 3]);
        assert!(doorbell.take().is_empty());
    }

    #[test]
    fn a_ring_after_a_take_wakes_again() {
        let doorbell = doorbell();
        doorbell.bell.ring(7);
        assert_eq!(doorbell.take(), vec![7]);
        assert_eq!(unread_bytes(&doorbell), 0);
        doorbell.bell.ring(8);
        assert_eq!(unread_bytes(&doorbell), 1);
        assert_eq!(doorbell.take(), vec![8]);
    }
}
