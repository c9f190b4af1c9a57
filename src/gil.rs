//! The one GIL helper. Every blocking call releases the GIL through here, so
//! that other Python threads run while we wait on the network.

use pyo3::marker::Ungil;
use pyo3::Python;

/// Run `work` with the GIL released and take it back afterwards.
pub fn without_gil<T, F>(py: Python<'_>, work: F) -> T
where
    F: Ungil + FnOnce() -> T,
    T: Ungil,
{
    py.detach(work)
}
