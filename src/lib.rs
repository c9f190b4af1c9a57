//! Rust core of loopfree. This file only wires modules together.
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod body_reader;
mod body_sender;
mod bytes_fill;
mod connect;
mod decode;
mod direct;
mod doorbell;
mod engine;
mod errors;
mod exchange;
mod gil;
mod pending;
mod redirect;
mod runtime;
mod tls;
mod upload;

use pyo3::prelude::*;

/// Rust's allocations (response bodies above all) go to mimalloc, not to
/// glibc's arenas: a sync request now reads its body on the caller's thread,
/// whose arena is Python's main one, where a freed 16 MiB buffer was trimmed
/// back to the OS and faulted in again by the next download.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runtimes this process abandoned because it was forked (0 in a process
/// that never forked after first use).
#[pyfunction]
fn abandoned_runtimes() -> usize {
    runtime::abandoned_runtimes()
}

/// Registered with `atexit`: the completion thread stops taking the GIL.
#[pyfunction]
fn begin_shutdown(py: Python<'_>) {
    runtime::begin_shutdown(py);
}

#[pymodule]
#[pyo3(name = "_loopfree")]
fn loopfree_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<engine::Engine>()?;
    m.add_class::<pending::Pending>()?;
    m.add_class::<doorbell::Doorbell>()?;
    m.add_class::<body_reader::BodyReader>()?;
    m.add_class::<body_sender::BodySender>()?;
    m.add_function(wrap_pyfunction!(abandoned_runtimes, m)?)?;
    m.add_function(wrap_pyfunction!(begin_shutdown, m)?)?;
    Ok(())
}
