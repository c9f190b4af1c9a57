//! A Python `bytes` written in place: the crate's only `unsafe` code.
//!
//! A large response body is read straight into the `bytes` object returned
//! to Python, so it is copied once (from hyper's buffer) and held once. pyo3's
//! safe `PyBytes::new_with` zero-fills the object first: measured 16 % of the
//! CPU of a 16 MiB download. CPython's own pattern for this is
//! `PyBytes_FromStringAndSize(NULL, n)` (contents uninitialised) and writing
//! every byte before anyone sees the object; that is all this module does.
#![allow(unsafe_code)]

use std::mem::MaybeUninit;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// The not-yet-written bytes of an object being filled. `Send`, so it can
/// be written with the GIL released.
pub struct Filler<'a> {
    space: &'a mut [MaybeUninit<u8>],
    filled: usize,
}

impl Filler<'_> {
    /// Append `chunk`; false (and nothing written) when it does not fit.
    pub fn push(&mut self, chunk: &[u8]) -> bool {
        let Some(end) = self.filled.checked_add(chunk.len()) else {
            return false;
        };
        let Some(place) = self.space.get_mut(self.filled..end) else {
            return false;
        };
        // SAFETY: `place` is `chunk.len()` bytes long and cannot overlap
        // `chunk` (it lies in an object nothing else references).
        // (`write_copy_of_slice` would do this safely from Rust 1.93.)
        unsafe {
            std::ptr::copy_nonoverlapping(
                chunk.as_ptr(),
                place.as_mut_ptr().cast::<u8>(),
                chunk.len(),
            );
        }
        self.filled = end;
        true
    }

    pub fn is_full(&self) -> bool {
        self.filled == self.space.len()
    }
}

/// A `bytes` of `len` bytes written by `fill`. The object is returned only
/// when `fill` succeeded and wrote every byte; otherwise it is freed unseen
/// and `incomplete()` (or `fill`'s error) is returned.
pub fn bytes_filled_by<'py>(
    py: Python<'py>,
    len: usize,
    fill: impl FnOnce(&mut Filler<'_>) -> PyResult<()>,
    incomplete: impl FnOnce() -> PyErr,
) -> PyResult<Bound<'py, PyBytes>> {
    let size = pyo3::ffi::Py_ssize_t::try_from(len)
        .map_err(|_| pyo3::exceptions::PyOverflowError::new_err("body too large"))?;
    // SAFETY: a NULL source asks CPython for an object whose `len` data bytes
    // are uninitialised; a NULL result is turned into the pending exception.
    let object = unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            pyo3::ffi::PyBytes_FromStringAndSize(std::ptr::null(), size),
        )?
    };
    let data = unsafe { pyo3::ffi::PyBytes_AsString(object.as_ptr()) };
    if data.is_null() {
        return Err(PyErr::fetch(py));
    }
    // SAFETY: `object` is a new bytes object of exactly `len` data bytes at
    // `data` that nothing else references (no other thread can reach it while
    // `fill` runs without the GIL), and it outlives `space`. The bytes are
    // seen only as `MaybeUninit` until `is_full` says each one was written.
    let space = unsafe { std::slice::from_raw_parts_mut(data.cast::<MaybeUninit<u8>>(), len) };
    let mut filler = Filler { space, filled: 0 };
    fill(&mut filler)?;
    if !filler.is_full() {
        return Err(incomplete());
    }
    Ok(object.cast_into::<PyBytes>()?)
}
