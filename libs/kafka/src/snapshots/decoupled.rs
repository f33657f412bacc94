//! Writing a snapshot without holding a map shard's lock across file I/O.
//!
//! The store is read under shard read locks; the apply thread waits on one
//! to write into that shard. Were the file written while a shard is being
//! read, a stalled volume would stall the feed. So the encoder hands its
//! chunks over an unbounded channel to a thread of its own that writes
//! the file: the shards are read at memory speed whatever the disk does,
//! and a disk slower than encoding costs memory (at most the snapshot's
//! size, ~24 B a session), never the feed.

use std::io::{self, Write};
use std::sync::mpsc;
use std::thread;

/// A [`Write`] that queues what it is given for [`drain`]'s thread.
pub(super) struct Queue(mpsc::Sender<Vec<u8>>);

impl Write for Queue {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.send(buf.to_vec()).map_err(|_| io::Error::other("the snapshot's file writer stopped"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs `encode` with a [`Queue`] whose bytes another thread writes to
/// `sink`; returns `encode`'s result and the sink once both are done.
pub(super) fn write_through<W, T>(sink: W, encode: impl FnOnce(&mut Queue) -> io::Result<T>) -> io::Result<(T, W)>
where
    W: Write + Send + 'static,
{
    let (send, receive) = mpsc::channel::<Vec<u8>>();
    let writer = thread::Builder::new().name("projection-snapshot-io".into()).spawn(move || {
        let mut sink = sink;
        for bytes in receive {
            sink.write_all(&bytes)?;
        }
        sink.flush()?;
        Ok::<W, io::Error>(sink)
    })?;
    let mut queue = Queue(send);
    let encoded = encode(&mut queue);
    drop(queue); // ends the writer's loop
    let written = writer.join().map_err(|_| io::Error::other("the snapshot's file writer panicked"))?;
    let encoded = encoded?;
    Ok((encoded, written?))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};
    use std::time::Duration;

    use revocation_core::{Decoded, SessionStore, SnapshotMeta, Timestamp, write_snapshot};
    use revocation_test_support::{created, revoked};

    use super::*;

    /// A sink that stalls at its `stall_at`-th write until released, as a
    /// volume that stops answering in the middle of a snapshot.
    struct Stalled {
        release: Arc<Barrier>,
        writes: usize,
        stall_at: usize,
        bytes: Vec<u8>,
    }

    impl Write for Stalled {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.writes += 1;
            if self.writes == self.stall_at {
                self.release.wait();
            }
            self.bytes.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_volume_that_stalls_mid_snapshot_does_not_stall_writes_to_the_store() {
        let store = Arc::new(SessionStore::new());
        let now = Timestamp::from_unix_secs(1_800_000_000);
        let ids: Vec<String> = (0..50_000).map(|i| format!("s-{i}")).collect();
        for id in &ids {
            let event = created(id, None);
            store.apply(Decoded::from(&event), now);
        }
        let meta = SnapshotMeta {
            topic: "t".into(),
            format: "events".into(),
            partitions: 1,
            positions: [(0, 1)].into(),
            max_session_lifetime_secs: None,
            written_at_micros: 0,
            cluster_id: None,
            fresh_as_of_micros: None,
            sessions: 0,
        };
        // The header is a few writes; the 8th is a chunk of sessions in the
        // middle of the store.
        let release = Arc::new(Barrier::new(2));
        let sink = Stalled { release: release.clone(), writes: 0, stall_at: 8, bytes: Vec::new() };
        let writing = {
            let store = store.clone();
            thread::spawn(move || write_through(sink, |queue| write_snapshot(&store, &meta, queue)))
        };
        // Every shard takes writes while the volume is stalled. (Were a shard
        // read lock held across the stalled write, these would wait forever:
        // the deadline only turns that hang into a failure.)
        let (done, applied) = mpsc::channel();
        {
            let store = store.clone();
            thread::spawn(move || {
                for id in &ids {
                    let event = revoked(id);
                    store.apply(Decoded::from(&event), now);
                }
                let _ = done.send(());
            });
        }
        let result = applied.recv_timeout(Duration::from_secs(60));
        release.wait();
        assert!(result.is_ok(), "writes to the store waited for the stalled volume");
        let (counts, written) = writing.join().unwrap().unwrap();
        assert_eq!(counts.sessions, 50_000);
        assert_eq!(written.bytes.len() as u64, counts.bytes);
    }
}
