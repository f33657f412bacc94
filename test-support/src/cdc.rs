//! Change data capture in tests: a Debezium connector of the test's own on
//! the local Kafka Connect worker (`scripts/connect.sh`), reading the
//! `user_sessions` table of the test's schema into a topic of its own.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use revocation_kafka::KafkaConfig;
use serde_json::Value;

use crate::kafka::topic_config;
use crate::servers::repo_root;

const CONNECT: &str = "127.0.0.1:8083";

/// One HTTP/1.1 request to Connect's REST API: the status and the body.
fn http(method: &str, path: &str, body: Option<&str>) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(CONNECT)?;
    // Patient: a standalone worker answers one request at a time, and one
    // that starts a connector's task can hold the next for tens of seconds
    // on a cold machine (a 30 s bound failed a CI run).
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {CONNECT}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

/// Fails with the command to run when Kafka Connect is not up.
pub fn require_connect() {
    if !matches!(http("GET", "/", None), Ok((200, _))) {
        panic!("Kafka Connect is not reachable at {CONNECT}; start it with `scripts/servers.sh up`");
    }
}

/// A Debezium connector for `<schema>.user_sessions`; deleted, with its
/// replication slot and publication, when dropped (a slot left behind keeps
/// WAL forever).
#[derive(Debug)]
pub struct CdcConnector {
    name: String,
    /// The replication slot and publication (named alike).
    slot: String,
    config: Value,
    /// The change-event topic, `<schema>.<schema>.user_sessions`.
    pub topic: KafkaConfig,
}

impl CdcConnector {
    /// Registers the connector of `deploy/debezium-connector.json` for the
    /// test's schema (its own topic prefix, slot and publication), with
    /// `overrides` on top, and waits until its task runs.
    pub fn register(schema: &str, overrides: &[(&str, &str)]) -> Self {
        Self::register_as(schema, schema, overrides)
    }

    /// [`Self::register`] under another `name` (its topic prefix, slot and
    /// publication): a second connector of the same table, writing to a
    /// topic of its own (`<name>.<schema>.user_sessions`), as the procedure
    /// after a truncate does.
    pub fn register_as(schema: &str, name: &str, overrides: &[(&str, &str)]) -> Self {
        require_connect();
        let path = repo_root().join("deploy/debezium-connector.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut config: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // One heartbeat row per partition of the topic the connector creates.
        let partitions = overrides
            .iter()
            .chain(
                [(
                    "topic.creation.default.partitions",
                    config["topic.creation.default.partitions"].as_str().unwrap_or("1"),
                )]
                .iter(),
            )
            .find(|(k, _)| *k == "topic.creation.default.partitions")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(1);
        let heartbeat = revocation_kafka::heartbeat_action_query(&format!("{schema}.user_sessions"), partitions);
        let fields = [
            ("heartbeat.action.query", heartbeat),
            ("topic.prefix", name.to_owned()),
            ("table.include.list", format!("{schema}.user_sessions,{schema}.user_session_cutoffs")),
            ("slot.name", name.to_owned()),
            ("publication.name", name.to_owned()),
        ];
        for (key, value) in fields.iter().map(|(k, v)| (*k, v.as_str())).chain(overrides.iter().copied()) {
            config[key] = Value::String(value.to_owned());
        }
        let connector_name = format!("cdc-{name}");
        let (status, body) = http("PUT", &format!("/connectors/{connector_name}/config"), Some(&config.to_string()))
            .unwrap_or_else(|e| panic!("Kafka Connect: {e}; start it with `scripts/servers.sh up`"));
        assert!(status == 200 || status == 201, "Connect refused the connector ({status}): {body}");
        let connector = Self {
            name: connector_name,
            slot: name.to_owned(),
            config,
            topic: topic_config(&format!("{name}.{schema}.user_sessions")),
        };
        for _ in 0..240 {
            if connector.state() == "RUNNING RUNNING" {
                return connector;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("the connector did not run: {}", connector.state());
    }

    /// Changes settings of the running connector (Connect restarts its task,
    /// which goes on from its offsets) and waits until it runs again.
    pub fn reconfigure(&mut self, overrides: &[(&str, &str)]) {
        for (key, value) in overrides {
            self.config[*key] = Value::String((*value).to_owned());
        }
        let (status, body) = http("PUT", &format!("/connectors/{}/config", self.name), Some(&self.config.to_string()))
            .unwrap_or_default();
        assert!(status == 200 || status == 201, "Connect refused the new configuration ({status}): {body}");
        std::thread::sleep(Duration::from_secs(1));
        for _ in 0..240 {
            if self.state() == "RUNNING RUNNING" {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("the connector did not run again: {}", self.state());
    }

    /// `<connector state> <task state>`, as Connect reports them.
    pub fn state(&self) -> String {
        let Ok((200, body)) = http("GET", &format!("/connectors/{}/status", self.name), None) else {
            return "ABSENT NONE".into();
        };
        let status: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let task = status["tasks"].get(0).and_then(|t| t["state"].as_str()).unwrap_or("NONE");
        format!("{} {task}", status["connector"]["state"].as_str().unwrap_or("?"))
    }

    /// Restarts the connector's task if it failed (as an operator would,
    /// `POST /connectors/<name>/restart`) and waits until it runs; whether it
    /// had failed.
    pub fn restart_failed(&self) -> bool {
        if !self.state().contains("FAILED") {
            return false;
        }
        let path = format!("/connectors/{}/restart?includeTasks=true&onlyFailed=true", self.name);
        let _ = http("POST", &path, None);
        for _ in 0..240 {
            if self.state() == "RUNNING RUNNING" {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        true
    }

    /// Pauses (`pause`) or resumes (`resume`) the connector.
    pub fn set(&self, action: &str) {
        let (status, body) = http("PUT", &format!("/connectors/{}/{action}", self.name), None).unwrap_or_default();
        assert!(status == 202 || status == 204, "{action} refused ({status}): {body}");
    }
}

impl Drop for CdcConnector {
    fn drop(&mut self) {
        let _ = http("DELETE", &format!("/connectors/{}", self.name), None);
        // The task lets go of the slot shortly after the connector is deleted.
        for _ in 0..40 {
            let dropped = Command::new("psql")
                .args([&crate::servers::database_url(), "-qAt", "-v", "ON_ERROR_STOP=1", "-c"])
                .arg(format!(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{0}';
                     DROP PUBLICATION IF EXISTS {0};",
                    self.slot
                ))
                .output()
                .is_ok_and(|o| o.status.success());
            if dropped {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// The cleanup SQL of `docs/lifecycle.md`, as documented, for `table`
/// (tests run the page's own text, so the page cannot drift from what is
/// tested).
pub fn documented_cleanup(table: &str) -> String {
    let path = repo_root().join("docs/lifecycle.md");
    let doc = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let section = doc.split("### With CDC").nth(1).expect("docs/lifecycle.md has its CDC section");
    let sql = section.split("```sql").nth(1).and_then(|s| s.split("```").next()).expect("a ```sql block there");
    assert!(sql.contains("DELETE FROM public.user_sessions"), "{sql}");
    sql.replace("public.user_sessions", table)
}
