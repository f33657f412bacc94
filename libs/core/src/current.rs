//! [`Current`]: the projection answering now, swappable by a rebuild, read
//! without a locked instruction.
//!
//! A rebuild swaps the whole [`Projection`] atomically (`arc-swap`). Loading
//! through `ArcSwap` costs two locked instructions per check (its debt slot),
//! and a locked instruction is a full fence on x86: back-to-back checks could
//! no longer overlap their cache misses. So each thread keeps its own handle
//! ([`arc_swap::Cache`]) and revalidates it with one plain load of the
//! pointer; only the first check on a thread, and the first after a swap,
//! take the locked path.
//!
//! The price: a swapped-out projection is freed once every thread that held
//! it has checked again (or exited), not at the swap.

use std::cell::RefCell;
use std::sync::Arc;

use arc_swap::{ArcSwap, Cache};

use crate::projection::Projection;

type Handle = Cache<Arc<ArcSwap<Projection>>, Arc<Projection>>;

thread_local! {
    /// This thread's handle, for the last [`Current`] it read (a process
    /// normally has one; reading another replaces it).
    static HANDLE: RefCell<Option<Handle>> = const { RefCell::new(None) };
}

/// The projection answering now.
#[derive(Debug)]
pub(crate) struct Current(Arc<ArcSwap<Projection>>);

impl Current {
    pub(crate) fn new(projection: Arc<Projection>) -> Self {
        Self(Arc::new(ArcSwap::new(projection)))
    }

    /// Runs `f` on the projection answering now, through this thread's
    /// handle. `f` must not read a `Current` itself (it would find the
    /// handle busy and take the slow path, which is correct but slower).
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(&Arc<Projection>) -> R) -> R {
        let mut f = Some(f);
        let fast = HANDLE.try_with(|handle| {
            let Ok(mut handle) = handle.try_borrow_mut() else { return None };
            let handle = match &mut *handle {
                Some(cached) if std::ptr::eq(cached.arc_swap(), &*self.0) => cached,
                other => other.insert(Cache::new(self.0.clone())),
            };
            f.take().map(|f| f(handle.load()))
        });
        match fast {
            Ok(Some(answer)) => answer,
            // The thread is exiting, or `f` re-entered: read it the locked way.
            _ => match f.take() {
                Some(f) => f(&self.0.load_full()),
                None => unreachable!("`f` ran, so the handle answered"),
            },
        }
    }

    /// The projection answering now, as an owned handle (slow paths).
    pub(crate) fn load_full(&self) -> Arc<Projection> {
        self.0.load_full()
    }

    /// Swaps in `projection`; checks already under way finish on the old one.
    pub(crate) fn store(&self, projection: Arc<Projection>) {
        self.0.store(projection);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FreshnessConfig;

    fn projection() -> Arc<Projection> {
        Arc::new(Projection::new(FreshnessConfig::default()))
    }

    #[test]
    fn every_thread_sees_a_swap_at_its_next_read() {
        let (first, second) = (projection(), projection());
        let current = Arc::new(Current::new(first.clone()));
        assert!(current.with(|p| Arc::ptr_eq(p, &first)));
        let reader = {
            let current = current.clone();
            std::thread::spawn(move || current.with(|p| Arc::as_ptr(p) as usize))
        };
        assert_eq!(reader.join().unwrap(), Arc::as_ptr(&first) as usize);
        current.store(second.clone());
        assert!(current.with(|p| Arc::ptr_eq(p, &second)), "this thread's cached handle is revalidated");
        let reader = std::thread::spawn(move || current.with(|p| Arc::as_ptr(p) as usize));
        assert_eq!(reader.join().unwrap(), Arc::as_ptr(&second) as usize);
    }

    #[test]
    fn two_instances_on_one_thread_each_read_their_own() {
        let (a, b) = (projection(), projection());
        let (current_a, current_b) = (Current::new(a.clone()), Current::new(b.clone()));
        for _ in 0..3 {
            assert!(current_a.with(|p| Arc::ptr_eq(p, &a)));
            assert!(current_b.with(|p| Arc::ptr_eq(p, &b)));
        }
    }

    #[test]
    fn a_read_inside_a_read_is_answered_too() {
        let (a, b) = (projection(), projection());
        let (current_a, current_b) = (Current::new(a.clone()), Current::new(b.clone()));
        let inner = current_a.with(|_| current_b.with(|p| Arc::ptr_eq(p, &b)));
        assert!(inner);
    }

    #[test]
    fn a_swapped_out_projection_is_freed_once_every_reader_moved_on() {
        let old = projection();
        let weak = Arc::downgrade(&old);
        let current = Current::new(old);
        current.with(|_| ());
        current.store(projection());
        assert!(weak.upgrade().is_some(), "this thread still holds it until its next read");
        current.with(|_| ());
        assert!(weak.upgrade().is_none());
    }
}
