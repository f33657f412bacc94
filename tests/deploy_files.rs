//! Docker cannot run on our CI machines, so the deployment files are checked
//! for structure and for agreement with the scripts' ports and defaults.
#![allow(clippy::unwrap_used)] // tests state their expectations with unwrap

use std::collections::BTreeMap;

use revocation_test_support::repo_root;
use serde_yaml::Value;

fn compose() -> Value {
    let text = std::fs::read_to_string(repo_root().join("docker-compose.yml")).expect("docker-compose.yml");
    serde_yaml::from_str(&text).expect("docker-compose.yml is valid YAML")
}

fn env(service: &Value) -> BTreeMap<String, String> {
    let map = service["environment"].as_mapping().expect("environment is a mapping");
    map.iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                other => panic!("unexpected value {other:?}"),
            };
            (k.as_str().expect("key").to_owned(), v)
        })
        .collect()
}

#[test]
fn compose_has_kafka_postgres_and_the_projector_on_the_scripts_ports() {
    let compose = compose();
    let services = &compose["services"];
    for name in ["kafka", "postgres", "projector"] {
        assert!(services[name].is_mapping(), "service {name} missing");
    }
    let ports = |s: &str| -> Vec<String> {
        services[s]["ports"].as_sequence().unwrap().iter().map(|p| p.as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(ports("kafka"), ["127.0.0.1:9092:9092"]);
    assert_eq!(ports("postgres"), ["127.0.0.1:5432:5432"]);
    assert_eq!(ports("projector"), ["127.0.0.1:8080:8080"]);
    assert!(services["kafka"]["image"].as_str().unwrap().starts_with("apache/kafka:4."), "Kafka 4.x in KRaft mode");
    let kafka = env(&services["kafka"]);
    assert_eq!(kafka["KAFKA_PROCESS_ROLES"], "broker,controller");
}

#[test]
fn compose_uses_the_same_credentials_and_defaults_as_the_scripts() {
    let compose = compose();
    let services = &compose["services"];
    let pg = env(&services["postgres"]);
    assert_eq!(
        (pg["POSTGRES_USER"].as_str(), pg["POSTGRES_PASSWORD"].as_str(), pg["POSTGRES_DB"].as_str()),
        ("revocation", "revocation", "revocation")
    );
    let script = std::fs::read_to_string(repo_root().join("scripts/postgres.sh")).unwrap();
    for line in ["role=\"revocation\"", "database=\"revocation\"", "password=\"revocation\""] {
        assert!(script.contains(line), "scripts/postgres.sh lacks {line}");
    }
    let projector = env(&services["projector"]);
    assert_eq!(projector["PROJECTOR_TOPIC"], "session-events");
    assert_eq!(projector["DATABASE_URL"], "postgres://revocation:revocation@postgres:5432/revocation");
    assert_eq!(projector["PROJECTOR_LISTEN"], "0.0.0.0:8080");
    // Every PROJECTOR_* variable the compose file sets is one the binary reads.
    let cli: String = std::fs::read_dir(repo_root().join("services/projector/src/cli"))
        .unwrap()
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .collect();
    for key in projector.keys().filter(|k| k.starts_with("PROJECTOR_") || k.as_str() == "DATABASE_URL") {
        assert!(cli.contains(&format!("env = \"{key}\"")), "the projector does not read {key}");
    }
    let depends = services["projector"]["depends_on"].as_mapping().unwrap();
    assert!(depends.contains_key("postgres") && depends.contains_key("create-topic"));
}

#[test]
fn the_dockerfile_is_a_multi_stage_build_of_the_projector() {
    let text = std::fs::read_to_string(repo_root().join("Dockerfile")).expect("Dockerfile");
    let stages: Vec<_> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert!(stages.len() >= 2, "multi-stage: {stages:?}");
    assert!(stages[0].contains(" AS build"));
    assert!(text.contains("cargo build --release --locked -p projector"));
    assert!(text.contains("COPY --from=build"));
    assert!(text.contains("ENTRYPOINT [\"projector\"]"));
}

/// Every `projection_*` name the dashboard and the alert rules use is one
/// the exporter writes.
#[test]
fn the_dashboard_and_alerts_use_only_exported_metrics() {
    let exporter = std::fs::read_to_string(repo_root().join("libs/http/src/metrics.rs")).unwrap();
    for file in ["deploy/grafana-dashboard.json", "deploy/alerts.yml"] {
        let text = std::fs::read_to_string(repo_root().join(file)).unwrap();
        let mut names: Vec<&str> = text
            .match_indices("projection_")
            .map(|(i, _)| {
                let end =
                    text[i..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(text.len(), |e| i + e);
                &text[i..end]
            })
            .collect();
        names.sort_unstable();
        names.dedup();
        assert!(!names.is_empty(), "{file} names no metric");
        for name in names {
            assert!(exporter.contains(&format!("\"{name}\"")), "{file} uses {name}, which /metrics does not export");
        }
    }
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo_root().join("deploy/grafana-dashboard.json")).unwrap())
            .unwrap();
    assert!(dashboard["panels"].as_array().unwrap().len() >= 8);
    let _: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(repo_root().join("deploy/alerts.yml")).unwrap()).unwrap();
}

/// The `tls` profile's projector connects over SASL_SSL with its secrets in
/// files, never in its environment or command line.
#[test]
fn the_tls_profile_hands_secrets_over_as_files() {
    let compose = compose();
    let services = &compose["services"];
    let projector = env(&services["projector-tls"]);
    assert_eq!(projector["PROJECTOR_BOOTSTRAP_SERVERS"], "kafka-tls:9094");
    for (key, value) in &projector {
        assert!(!key.contains("PASSWORD") && !value.contains("projector-secret"), "{key} carries a secret");
    }
    for secret in ["kafka-client", "database-url"] {
        let file = compose["secrets"][secret]["file"].as_str().unwrap();
        assert!(repo_root().join(file).exists(), "{file}");
    }
    let client = std::fs::read_to_string(repo_root().join("deploy/compose-tls/kafka-client.properties")).unwrap();
    assert!(client.contains("security.protocol=SASL_SSL"));
    let broker = std::fs::read_to_string(repo_root().join("deploy/compose-tls/server.properties")).unwrap();
    assert!(broker.contains("SASL_SSL://kafka-tls:9094"));
}
