//! The `projector` binary as a test runs it: started on a free port, asked
//! over HTTP, stopped gracefully (SIGTERM) or killed; killed if the test
//! fails first. The binary's path comes from the caller
//! (`env!("CARGO_BIN_EXE_projector")`, known only to the binary's own tests).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
        .port()
}

/// A running `projector serve`; killed when dropped.
#[derive(Debug)]
pub struct ProjectorProcess {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl ProjectorProcess {
    /// Starts `binary serve --listen <free port> <args>`, logging warnings
    /// to the test's stderr.
    pub fn start(binary: &str, args: &[&str]) -> Self {
        let port = free_port();
        let child = Command::new(binary)
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
        Self { child, base: format!("http://127.0.0.1:{port}") }
    }

    /// GET `path`: status, `Retry-After`, JSON body (null when not JSON).
    pub async fn get(&self, path: &str) -> (u16, Option<String>, serde_json::Value) {
        let response = reqwest::get(format!("{}{path}", self.base)).await.unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = response.status().as_u16();
        let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = response.json().await.unwrap_or(serde_json::Value::Null);
        (status, retry_after, body)
    }

    /// GET `path`'s status, or `None` when the process does not answer.
    pub async fn status(&self, path: &str) -> Option<u16> {
        reqwest::get(format!("{}{path}", self.base)).await.ok().map(|r| r.status().as_u16())
    }

    /// `/health/lag`, when the process answers.
    pub async fn lag(&self) -> Option<serde_json::Value> {
        reqwest::get(format!("{}/health/lag", self.base)).await.ok()?.json().await.ok()
    }

    /// Waits until `path` answers `status`; returns its body.
    pub async fn wait_until(&self, path: &str, status: u16, limit: Duration) -> serde_json::Value {
        let started = Instant::now();
        loop {
            if let Ok(response) = reqwest::get(format!("{}{path}", self.base)).await
                && response.status().as_u16() == status
            {
                return response.json().await.unwrap_or(serde_json::Value::Null);
            }
            assert!(started.elapsed() < limit, "{path} did not answer {status} within {limit:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, then the exit status (a graceful stop writes the snapshot).
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "no exit within 20 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ProjectorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
