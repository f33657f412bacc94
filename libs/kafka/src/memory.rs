//! Giving back the memory a replay freed.
//!
//! glibc keeps what a thread frees in that thread's arena for reuse, so a
//! process that peaked stays resident at its peak. A cold replay peaks:
//! librdkafka's fetch buffers and the map's outgrown tables left ~175 MB
//! resident at 10M sessions, a third above a warm start
//! (`docs/benchmarks-notes.md`, "Stop 28"). Once the projection has caught
//! up, `malloc_trim(0)` returns every arena's free pages to the system.

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
    #[test]
    fn freed_memory_goes_back_to_the_system() {
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
}
