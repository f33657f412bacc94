//! Giving back the memory a replay freed.
//!
//! glibc keeps what a thread frees in that thread's arena for reuse, so a
//! process that peaked stays resident at its peak. A cold replay peaks:
//! librdkafka's fetch buffers and the map's outgrown tables left ~175 MB
//! resident at 10M sessions, a third above a warm start
//! (`docs/benchmarks-notes.md`, "Stop 28"). Once the projection has caught
//! up, `malloc_trim(0)` returns every arena's free pages to the system.
//!
//! The trim cannot return pages still partly in use, and a growing map
//! leaves them: glibc raises its mmap threshold each time it unmaps a
//! block, so the map's middle-sized tables come from an arena, and what is
//! allocated among them later pins their pages (~55 MB at 10M sessions).
//! A fixed threshold keeps every block of [`LARGE`] or more in a mapping of
//! its own, unmapped when freed.

/// Blocks this large or larger are mapped on their own (glibc's
/// `M_MMAP_THRESHOLD`): the map's tables from ~150k sessions up, not
/// librdkafka's per-message buffers.
pub(crate) const LARGE: usize = 4 << 20;

/// Sets glibc's mmap threshold to [`LARGE`] for the whole process, once;
/// whether it is set. Not where the operator chose one
/// (`MALLOC_MMAP_THRESHOLD_` in the environment, glibc's own setting).
/// Elsewhere nothing (other allocators map large blocks on their own).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub(crate) fn map_large_allocations() -> bool {
    static SET: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SET.get_or_init(|| {
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some() {
            return false;
        }
        // SAFETY: mallopt takes no pointers; glibc applies it under its own lock.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, LARGE as libc::c_int) == 1 }
    })
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn map_large_allocations() -> bool {
    false
}

/// Returns the free pages of glibc's arenas to the system; whether any
/// were. Elsewhere (musl, other systems) nothing: their allocators return
/// large blocks themselves or have no such call.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub(crate) fn release_freed() -> bool {
    // SAFETY: malloc_trim takes no pointers and rearranges only glibc's own
    // free lists, under the locks of the arenas it walks.
    unsafe { libc::malloc_trim(0) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn release_freed() -> bool {
    false
}

/// The process's resident memory in kB (`VmRSS`), where the system says.
pub(crate) fn resident_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    /// Both tests read the process's resident memory: one at a time.
    static RESIDENT: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn freed_memory_goes_back_to_the_system() {
        let _alone = RESIDENT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // A thread's blocks, one in 16 kept: the freed ones between them
        // cannot shrink the arena from its top, so only a trim returns them.
        let kept = std::thread::spawn(|| {
            let blocks: Vec<Vec<u8>> = (0..200_000).map(|i| vec![i as u8; 512]).collect();
            blocks.into_iter().step_by(16).collect::<Vec<_>>()
        })
        .join()
        .unwrap();
        let before = super::resident_kb().unwrap();
        let released = super::release_freed();
        let after = super::resident_kb().unwrap();
        if cfg!(all(target_os = "linux", target_env = "gnu")) {
            assert!(released, "nothing returned ({before} kB resident)");
            assert!(after + 40_000 < before, "{before} kB → {after} kB");
        }
        drop(kept);
    }

    #[test]
    fn large_blocks_freed_among_kept_ones_leave_nothing_resident() {
        let _alone = RESIDENT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let chosen = std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some();
        assert_eq!(super::map_large_allocations(), cfg!(all(target_os = "linux", target_env = "gnu")) && !chosen);
        let before = super::resident_kb().unwrap();
        let kept = std::thread::spawn(|| {
            // Unmapping a block this large would raise glibc's own threshold
            // above the next ones, which then come from the thread's arena.
            drop(vec![1u8; 6 * super::LARGE]);
            let (mut tables, mut kept) = (Vec::new(), Vec::new());
            for round in 0..6u8 {
                tables.push(vec![round; super::LARGE + (1 << 20)]);
                kept.push(vec![round; 4096]); // pins the arena's pages after each table
            }
            drop(tables);
            kept
        })
        .join()
        .unwrap();
        let after = super::resident_kb().unwrap();
        if cfg!(all(target_os = "linux", target_env = "gnu")) {
            // 30 MB of tables were freed; in an arena they would stay resident.
            assert!(after < before + 10_000, "{before} kB → {after} kB, {} small blocks kept", kept.len());
        }
    }
}
