//! `GET /admin/snapshot`: the snapshot of this replica's live map, streamed
//! to a new replica booting from it (`--bootstrap-from`). Behind the admin
//! token; 503 unless this replica is Live; the bytes are written by a
//! blocking thread and streamed as they come, so checks go on and a slow
//! reader costs memory, never a stalled map.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::sync::mpsc;

use crate::Shared;
use crate::admin::authorized;

/// What serves a peer its snapshot (the embedding's Kafka source).
pub trait SnapshotSource: Send + Sync + 'static {
    /// Why no snapshot can be served now (not Live, not caught up), or `None`.
    fn refusal(&self) -> Option<String>;
    /// Writes the snapshot to `out`; blocking (called on a thread of its own).
    fn write_to(&self, out: Box<dyn Write + Send>) -> io::Result<u64>;
}

pub(crate) fn routes() -> Router<Shared> {
    Router::new().route("/admin/snapshot", get(snapshot))
}

async fn snapshot(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let admin = match authorized(&state, &headers) {
        Ok(admin) => admin,
        Err(answer) => return *answer,
    };
    let Some(source) = admin.snapshots.clone() else {
        let reason = "this replica does not serve snapshots (postgres-only mode)";
        return (StatusCode::NOT_FOUND, Json(json!({"status": "disabled", "reason": reason}))).into_response();
    };
    // Each stream may hold up to a snapshot's size in memory while the peer
    // reads: a few at once, not one per pod of a scale-out.
    let Some(slot) = StreamSlot::take() else {
        let reason = format!("{MAX_STREAMS} snapshots are being streamed already; ask again");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "5")],
            Json(json!({"status": "unavailable", "reason": reason})),
        )
            .into_response();
    };
    if let Some(why) = source.refusal() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            Json(json!({"status": "unavailable", "reason": why})),
        )
            .into_response();
    }
    let (send, mut receive) = mpsc::channel::<io::Result<Bytes>>(8);
    tokio::task::spawn_blocking(move || {
        write(source, send);
        drop(slot);
    });
    let stream = futures::stream::poll_fn(move |cx| receive.poll_recv(cx));
    ([(header::CONTENT_TYPE, "application/octet-stream")], Body::from_stream(stream)).into_response()
}

/// Writes the snapshot into the channel; a failure ends the stream with an
/// error, so the peer sees a broken transfer, never a short snapshot.
fn write(source: Arc<dyn SnapshotSource>, send: mpsc::Sender<io::Result<Bytes>>) {
    let out = Chunks { send: send.clone(), buf: Vec::with_capacity(CHUNK) };
    match source.write_to(Box::new(out)) {
        Ok(bytes) => tracing::info!(bytes, "snapshot served to a peer"),
        Err(e) => {
            tracing::warn!(error = %e, "snapshot to a peer broken off");
            let _ = send.blocking_send(Err(e));
        }
    }
}

const CHUNK: usize = 256 * 1024;

/// Snapshots streamed at once by this process.
const MAX_STREAMS: usize = 2;
static STREAMS: AtomicUsize = AtomicUsize::new(0);

/// One of the [`MAX_STREAMS`] slots, given back when dropped.
struct StreamSlot;

impl StreamSlot {
    fn take() -> Option<Self> {
        STREAMS
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < MAX_STREAMS).then_some(n + 1))
            .ok()
            .map(|_| Self)
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        STREAMS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A [`Write`] sending chunks into the response body.
struct Chunks {
    send: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl Chunks {
    fn send_buffered(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.send.blocking_send(Ok(chunk)).map_err(|_| io::Error::other("the peer went away"))
    }
}

impl Write for Chunks {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= CHUNK {
            self.send_buffered()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buffered()
    }
}
