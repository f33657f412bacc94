//! Faults on the shared servers, for the tests that inject them: run a
//! server script's action, take turns, and leave every server up.

use std::process::Command;

use crate::servers::script;

/// Runs `scripts/<name> <action>` (e.g. `kafka.sh pause`), failing the test
/// with the script's words when it fails.
pub fn run_script(name: &str, action: &str) {
    let out = Command::new(script(name)).arg(action).output().unwrap_or_else(|e| panic!("scripts/{name}: {e}"));
    assert!(out.status.success(), "scripts/{name} {action} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// One fault at a time: tests of a binary that break shared servers hold it.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Whatever a test breaks, every server is thawed and up when it ends.
#[derive(Debug)]
pub struct Heal;

impl Drop for Heal {
    fn drop(&mut self) {
        let _ = Command::new(script("servers.sh")).arg("resume").output();
        let _ = Command::new(script("servers.sh")).arg("up").output();
    }
}
