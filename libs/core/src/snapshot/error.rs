//! [`SnapshotError`]: why a snapshot cannot be read.

use std::io;

use thiserror::Error;

use super::SNAPSHOT_VERSION;

/// A snapshot could not be read. Each is a reason to replay in full.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Reading failed (the file is truncated, say).
    #[error("cannot read the snapshot: {0}")]
    Io(#[from] io::Error),
    /// Not a snapshot of ours.
    #[error("not a snapshot file (bad magic bytes)")]
    NotASnapshot,
    /// Written by another layout version.
    #[error("snapshot format version {found}, this build reads version {SNAPSHOT_VERSION}")]
    Version {
        /// The version in the file.
        found: u32,
    },
    /// The header cannot be read.
    #[error("snapshot header is unreadable: {0}")]
    Meta(String),
    /// An entry holds an id that is not a session id.
    #[error("snapshot holds an invalid session id")]
    BadEntry,
    /// The file ends before its structure does.
    #[error("snapshot is truncated")]
    Truncated,
    /// The checksum does not match: the file is corrupt or truncated.
    #[error(
        "snapshot checksum mismatch (stored {stored:08x}, computed {computed:08x}): the file is corrupt or truncated"
    )]
    Checksum {
        /// The checksum in the file.
        stored: u32,
        /// The checksum of the bytes read.
        computed: u32,
    },
}
