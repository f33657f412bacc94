//! Fake peers: busy, echoing, or serving given bytes (whole, or broken off).
#![allow(dead_code, clippy::unwrap_used)] // each test binary uses its own part

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A fake peer answering 503 (busy, `Retry-After: 1`) to its first request
/// and `body` to the next; its URL and how often it was asked.
pub async fn busy_then_serving(body: axum::body::Bytes) -> (String, Arc<AtomicUsize>) {
    use axum::response::IntoResponse;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    let app = axum::Router::new().route(
        "/admin/snapshot",
        axum::routing::get(move || {
            let (body, counter) = (body.clone(), counter.clone());
            async move {
                if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                    let busy = axum::Json(serde_json::json!({"reason": "2 snapshots are being streamed already"}));
                    (axum::http::StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "1")], busy).into_response()
                } else {
                    body.into_response()
                }
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, asked)
}

/// A peer answering 401 with the request's `Authorization` header as its
/// reason (an endpoint that echoes what it was sent).
pub async fn echoing_peer() -> String {
    use axum::response::IntoResponse;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/admin/snapshot",
        axum::routing::get(|headers: axum::http::HeaderMap| async move {
            let sent = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
            let reason = axum::Json(serde_json::json!({"reason": format!("refused {sent}")}));
            (axum::http::StatusCode::UNAUTHORIZED, reason).into_response()
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// Serves `body` at `/admin/snapshot`; `broken`: the stream ends in an error
/// (the connection drops mid-transfer).
pub async fn fake_peer(body: axum::body::Bytes, broken: bool) -> String {
    counted_fake_peer(body, broken).await.0
}

/// [`fake_peer`], and how often it was asked.
pub async fn counted_fake_peer(body: axum::body::Bytes, broken: bool) -> (String, Arc<AtomicUsize>) {
    use axum::routing::get;
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/admin/snapshot",
        get(move || {
            let body = body.clone();
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                // Half the bytes go out; then, when `broken`, the peer dies.
                let stream = futures::stream::unfold(0, move |step| {
                    let body = body.clone();
                    async move {
                        match step {
                            0 => Some((Ok::<_, std::io::Error>(body), 1)),
                            1 if broken => {
                                tokio::time::sleep(Duration::from_millis(200)).await;
                                Some((Err(std::io::Error::other("peer killed")), 2))
                            }
                            _ => None,
                        }
                    }
                });
                axum::body::Body::from_stream(stream)
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, asked)
}
