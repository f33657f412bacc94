//! What the CDC nemesis (`cdc_nemesis.rs`) stands on: how it starts its
//! projectors (warm, cold, booted from a peer), runs the workload's
//! statements through a PostgreSQL restart, and waits for both projectors
//! to be Live again.

use std::time::{Duration, Instant};

use revocation_test_support::{ProjectorProcess, bootstrap, database_url};
use sqlx::PgPool;

/// How the projectors are started: the topic they read now, and where the
/// warm one keeps its snapshot (and each replica booted from a peer its
/// own, beside it, with the peers' admin token).
pub struct Launch {
    pub schema: String,
    pub topic: String,
    pub snapshots: std::path::PathBuf,
    /// Replicas booted from a peer so far.
    pub booted: usize,
}

/// The peers' admin token (every projector serves its snapshot with it).
const TOKEN: &str = "a-long-random-admin-token-for-the-nemesis";

impl Launch {
    pub fn projector(&self, snapshots: bool) -> ProjectorProcess {
        let dir = self.snapshots.to_string_lossy().into_owned();
        let mut args = vec![];
        if snapshots {
            args.extend(["--snapshot-dir".to_owned(), dir, "--snapshot-interval".to_owned(), "3s".to_owned()]);
        }
        self.start(args)
    }

    /// A new replica with an empty disk, booted from `peer`.
    pub fn booted_from(&mut self, peer: &str) -> ProjectorProcess {
        self.booted += 1;
        let dir = self.snapshots.with_extension(format!("booted-{}", self.booted));
        let dir = dir.to_string_lossy().into_owned();
        let token = self.token_file().to_string_lossy().into_owned();
        self.start(vec![
            "--snapshot-dir".to_owned(),
            dir,
            "--bootstrap-from".to_owned(),
            peer.to_owned(),
            "--bootstrap-token-file".to_owned(),
            token,
        ])
    }

    pub fn token_file(&self) -> std::path::PathBuf {
        let path = self.snapshots.with_extension("token");
        if !path.exists() {
            std::fs::write(&path, TOKEN).unwrap();
        }
        path
    }

    fn start(&self, extra: Vec<String>) -> ProjectorProcess {
        let (url, servers) = (database_url(), bootstrap());
        let token = self.token_file().to_string_lossy().into_owned();
        let mut args = vec![
            "--topic",
            &self.topic,
            "--format",
            "debezium",
            "--bootstrap-servers",
            &servers,
            "--sample-interval",
            "100ms",
            "--max-staleness",
            "2s",
            "--database-url",
            &url,
            "--pg-schema",
            &self.schema,
            "--admin-token-file",
            &token,
        ];
        args.extend(extra.iter().map(String::as_str));
        ProjectorProcess::start(env!("CARGO_BIN_EXE_projector"), &args)
    }
}

async fn sql(pool: &PgPool, statement: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar::<_, String>(statement).fetch_all(pool).await
}

/// Runs `statement` (returning the ids it touched) until it succeeds or
/// the deadline passes: during a PostgreSQL restart it fails, and the row
/// is judged from the instant a retry returned (later than the commit).
pub async fn retry(pool: &PgPool, statement: &str, deadline: Instant) -> Option<Vec<String>> {
    while Instant::now() < deadline + Duration::from_secs(60) {
        match sql(pool, statement).await {
            Ok(ids) => return Some(ids),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    None
}

/// Waits until both projectors report Live; how long that took.
pub async fn recovery(projectors: [&ProjectorProcess; 2], limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        let mut live = 0;
        for p in projectors {
            if p.lag().await.is_some_and(|l| l["state"] == "live") {
                live += 1;
            }
        }
        if live == 2 {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}
