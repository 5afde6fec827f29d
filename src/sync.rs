//! The atomics of palisade's lock-free cores: std's, or loom's when the crate is built with
//! `--cfg palisade_loom` for the loom models (`scripts/loom`). A custom cfg rather than
//! `loom`: tokio reads `cfg(loom)` itself and does not build as a dependency under it.
//!
//! Only the cores a model checks import from here; under the cfg, their atomics are loom's
//! and must only be touched inside `loom::model`.

#[cfg(palisade_loom)]
pub(crate) use loom::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, AtomicUsize};
#[cfg(palisade_loom)]
pub(crate) use loom::sync::Mutex;
#[cfg(not(palisade_loom))]
pub(crate) use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, AtomicUsize};
#[cfg(not(palisade_loom))]
pub(crate) use std::sync::Mutex;

/// Between a `SeqCst` store and a `SeqCst` load of another atomic (the store-then-check of a
/// Dekker-style hand-over). The two `SeqCst` operations already order each other (C++20's
/// single total order over `SeqCst` operations), so in the real build this is nothing. loom
/// models `SeqCst` operations as `AcqRel` (its documented limitation) and then reports the
/// store-buffering outcome this order forbids; under loom an explicit `SeqCst` fence, which
/// loom does model, states the same order.
#[inline(always)]
pub(crate) fn store_then_check() {
    #[cfg(palisade_loom)]
    loom::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
}

/// Inside a spin loop (a reader retrying a seqlock): a hint to the CPU, or under loom a
/// yield so the model lets the writer run.
#[inline(always)]
pub(crate) fn spin() {
    #[cfg(palisade_loom)]
    loom::thread::yield_now();
    #[cfg(not(palisade_loom))]
    std::hint::spin_loop();
}
