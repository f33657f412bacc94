//! Real gateways in front of a projector, run from the very snippets in
//! `deploy/` with their addresses swapped for the test's: nginx
//! (`deploy/nginx/forward-auth.conf`) and Caddy (`deploy/caddy/Caddyfile`),
//! each a child process in a directory of its own; and the tiny upstream
//! they proxy to, which echoes the identity headers it was given.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::free_port;
use crate::servers::repo_root;

/// Which gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gateway {
    /// nginx with `auth_request`.
    Nginx,
    /// Caddy with `forward_auth`.
    Caddy,
}

/// A gateway process; killed when dropped.
#[derive(Debug)]
pub struct GatewayProcess {
    child: Child,
    dir: PathBuf,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl GatewayProcess {
    /// Starts `gateway` on a free port in front of the projector at
    /// `projector` and the service at `app` (both `127.0.0.1:<port>`),
    /// and waits until it accepts connections. Fails, naming the command
    /// that installs it, when the gateway is not installed.
    pub fn start(gateway: Gateway, projector: &str, app: &str) -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("gateway-{gateway:?}-{port}-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("logs")).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let (snippet, own_port) = match gateway {
            Gateway::Nginx => ("deploy/nginx/forward-auth.conf", "listen 8088;"),
            Gateway::Caddy => ("deploy/caddy/Caddyfile", ":8089 {"),
        };
        let text = std::fs::read_to_string(repo_root().join(snippet)).unwrap_or_else(|e| panic!("{snippet}: {e}"));
        assert!(text.contains(own_port) && text.contains("127.0.0.1:8080") && text.contains("127.0.0.1:9000"));
        let text = text.replace("127.0.0.1:8080", projector).replace("127.0.0.1:9000", app).replace(
            own_port,
            &match gateway {
                Gateway::Nginx => format!("listen 127.0.0.1:{port};"),
                Gateway::Caddy => format!("http://127.0.0.1:{port} {{"),
            },
        );
        let mut command = match gateway {
            Gateway::Nginx => nginx(&dir, &text),
            Gateway::Caddy => caddy(&dir, &text),
        };
        let log = std::fs::File::create(dir.join("logs/stderr.log")).unwrap_or_else(|e| panic!("{e}"));
        let child =
            command.stdout(Stdio::null()).stderr(log).spawn().unwrap_or_else(|e| {
                panic!("cannot start {gateway:?} ({e}); install it with: scripts/gateways.sh install")
            });
        let mut process = Self { child, dir, base: format!("http://127.0.0.1:{port}") };
        process.wait_accepting(port, gateway);
        process
    }

    fn wait_accepting(&mut self, port: u16, gateway: Gateway) {
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(self.dir.join("logs/stderr.log")).unwrap_or_default();
                panic!("{gateway:?} exited ({status}) at start:\n{log}");
            }
            assert!(started.elapsed() < Duration::from_secs(15), "{gateway:?} did not listen on {port} within 15 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// nginx as one process (no master, no daemon) with its files in `dir`.
fn nginx(dir: &std::path::Path, snippet: &str) -> Command {
    let d = dir.display();
    std::fs::write(dir.join("forward-auth.conf"), snippet).unwrap_or_else(|e| panic!("{e}"));
    let main = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/logs/error.log warn;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         include {d}/forward-auth.conf;\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), main).unwrap_or_else(|e| panic!("{e}"));
    let mut command = Command::new(which("nginx", "/usr/sbin/nginx"));
    command.args(["-p", &d.to_string(), "-c", &format!("{d}/nginx.conf")]);
    command
}

/// Caddy with its admin API off and its state in `dir`.
fn caddy(dir: &std::path::Path, snippet: &str) -> Command {
    std::fs::write(dir.join("Caddyfile"), format!("{{\n\tadmin off\n}}\n\n{snippet}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut command = Command::new(which("caddy", "/usr/bin/caddy"));
    command
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(dir.join("Caddyfile"))
        .env("HOME", dir)
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("XDG_CONFIG_HOME", dir.join("config"));
    command
}

fn which(name: &str, usual: &str) -> PathBuf {
    let usual = PathBuf::from(usual);
    assert!(
        usual.exists(),
        "{name} is not installed (looked for {}): run scripts/gateways.sh install",
        usual.display()
    );
    usual
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A tiny upstream on a free port: answers every request 200 with JSON
/// `{"path", "user", "session"}`, the last two from the `X-Auth-User` and
/// `X-Auth-Session` headers it received (null when absent or empty, an
/// array when sent more than once). Returns
/// `127.0.0.1:<port>`.
pub async fn echo_upstream() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}")).to_string();
    let app = axum::Router::new().fallback(|uri: axum::http::Uri, headers: axum::http::HeaderMap| async move {
        let header =
            |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty()).map(str::to_owned);
        axum::Json(serde_json::json!({
            "path": uri.path(),
            "user": header("x-auth-user"),
            "session": header("x-auth-session"),
            // The spellings CGI-style upstreams read as the same header.
            "underscored": [header("x_auth_user"), header("x_auth_session")],
        }))
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}
