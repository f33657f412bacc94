//! The local broker's TLS and SASL listeners (`scripts/kafka.sh`), and the
//! client settings for each way of connecting to them.

use std::path::PathBuf;
use std::time::Duration;

use revocation_kafka::KafkaConfig;

use crate::servers::repo_root;

/// The throw-away SASL user of the local broker.
pub const SASL_USER: &str = "projector";
/// Its password (also what `scripts/kafka.sh` configures).
pub const SASL_PASSWORD: &str = "projector-secret";

/// Where `scripts/tls.sh` keeps the CA and the certificates.
pub fn tls_dir() -> PathBuf {
    std::env::var_os("TLS_DIR").map_or_else(|| repo_root().join(".local/tls"), PathBuf::from)
}

/// A file of [`tls_dir`], as a string for a librdkafka option.
pub fn tls_file(name: &str) -> String {
    tls_dir().join(name).to_string_lossy().into_owned()
}

/// One way of connecting to the local broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// SASL_SSL, PLAIN.
    SaslPlain,
    /// SASL_SSL, SCRAM-SHA-256.
    Scram256,
    /// SASL_SSL, SCRAM-SHA-512.
    Scram512,
    /// SASL_SSL, OAUTHBEARER with librdkafka's unsecured JWTs.
    OAuthBearer,
    /// SSL with a client certificate (the listener requires one).
    MutualTls,
}

impl Security {
    /// The listener this mode connects to.
    pub fn bootstrap(self) -> &'static str {
        match self {
            Self::MutualTls => "127.0.0.1:9095",
            _ => "127.0.0.1:9094",
        }
    }

    /// The librdkafka options of this mode, with the local CA.
    pub fn options(self) -> Vec<(&'static str, String)> {
        let sasl = |mechanism: &str| {
            vec![
                ("security.protocol", "SASL_SSL".to_owned()),
                ("ssl.ca.location", tls_file("ca.pem")),
                ("sasl.mechanism", mechanism.to_owned()),
                ("sasl.username", SASL_USER.to_owned()),
                ("sasl.password", SASL_PASSWORD.to_owned()),
            ]
        };
        match self {
            Self::SaslPlain => sasl("PLAIN"),
            Self::Scram256 => sasl("SCRAM-SHA-256"),
            Self::Scram512 => sasl("SCRAM-SHA-512"),
            Self::OAuthBearer => vec![
                ("security.protocol", "SASL_SSL".to_owned()),
                ("ssl.ca.location", tls_file("ca.pem")),
                ("sasl.mechanism", "OAUTHBEARER".to_owned()),
                ("enable.sasl.oauthbearer.unsecure.jwt", "true".to_owned()),
                ("sasl.oauthbearer.config", format!("principal={SASL_USER}")),
            ],
            Self::MutualTls => vec![
                ("security.protocol", "SSL".to_owned()),
                ("ssl.ca.location", tls_file("ca.pem")),
                ("ssl.certificate.location", tls_file("client.pem")),
                ("ssl.key.location", tls_file("client.key")),
            ],
        }
    }

    /// A config for `topic` over this mode, sampling fast (tests wait on
    /// freshness).
    pub fn config(self, topic: &str) -> KafkaConfig {
        let mut config = KafkaConfig::new(self.bootstrap(), topic);
        config.sample_interval = Duration::from_millis(100);
        config.librdkafka_options = self.options().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        config
    }
}

/// Fails with the command to run when the TLS material or the broker's TLS
/// listeners are missing.
pub fn require_tls_listeners() {
    let start = "start them with `scripts/servers.sh up` (a broker started before the TLS listeners existed: `scripts/kafka.sh down` first)";
    assert!(tls_dir().join("ca.pem").exists(), "no TLS material in {}; {start}", tls_dir().display());
    for port in [9094, 9095, 9096, 9097] {
        let address = format!("127.0.0.1:{port}");
        if let Err(e) = std::net::TcpStream::connect_timeout(
            &address.parse().unwrap_or_else(|e| panic!("{address}: {e}")),
            Duration::from_secs(2),
        ) {
            panic!("the broker's TLS listener {address} is not reachable ({e}); {start}");
        }
    }
}
