//! [`ClientRefused`]: librdkafka refusing a client configuration, said once.

use std::fmt;

use rdkafka::error::KafkaError;

/// librdkafka refused to create a client. Its own sentence already names the
/// property ("Invalid value for configuration property …"); rdkafka's
/// `Display` appends the property and its *value* again, which repeats the
/// cause and would print a secret (`sasl.password`), so this prints
/// librdkafka's sentence alone.
///
/// ```
/// use rdkafka::consumer::BaseConsumer;
/// use revocation_kafka::ClientRefused;
/// let Err(refused) = rdkafka::ClientConfig::new().set("fetch.wait.max.ms", "hunter2").create::<BaseConsumer>()
/// else {
///     panic!("librdkafka takes no such value")
/// };
/// let shown = ClientRefused(refused).to_string();
/// assert_eq!(shown.matches("fetch.wait.max.ms").count(), 1, "{shown}");
/// assert!(!shown.contains("hunter2"), "{shown}");
/// ```
#[derive(Debug)]
pub struct ClientRefused(pub KafkaError);

impl fmt::Display for ClientRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            KafkaError::ClientConfig(_, description, _, _) => f.write_str(description),
            KafkaError::ClientCreation(description) => f.write_str(description),
            other => write!(f, "{other}"),
        }
    }
}

impl std::error::Error for ClientRefused {}
