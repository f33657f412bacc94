//! Which partition Kafka's default partitioner puts a key on: murmur2 of
//! the key's bytes (Java clients, Kafka Connect and so Debezium; librdkafka's
//! `murmur2_random`). The feed uses it to notice a key on a partition its
//! producer would not choose today (the topic was repartitioned), and the
//! CDC heartbeat ids are chosen with it so one lands on every partition.

/// librdkafka's name of the partitioner that matches Java clients; our
/// producers (the publisher, the janitor) use it, so their records and
/// tombstones land where a Java producer of the same key puts its own.
pub const JAVA_COMPATIBLE_PARTITIONER: &str = "murmur2_random";

/// The partition Kafka's default partitioner picks for `key` among
/// `partitions` (`toPositive(murmur2(key)) % partitions`).
///
/// ```
/// assert_eq!(revocation_kafka::default_partition(b"21", 1000), 340);
/// ```
pub fn default_partition(key: &[u8], partitions: u32) -> u32 {
    let hash = murmur2::murmur2(key, murmur2::KAFKA_SEED) & 0x7fff_ffff;
    hash % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka's own vectors (`UtilsTest.testMurmur2`), as signed Java ints.
    #[test]
    fn agrees_with_kafkas_murmur2() {
        for (key, java) in [
            ("21", -973932308i32),
            ("foobar", -790332482),
            ("a-little-bit-long-string", -985981536),
            ("a-little-bit-longer-string", -1486304829),
            ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
            ("abc", 479470107),
        ] {
            assert_eq!(murmur2::murmur2(key.as_bytes(), murmur2::KAFKA_SEED) as i32, java, "{key}");
        }
        assert_eq!(default_partition(b"21", 1000), 340);
        assert_eq!(default_partition(b"21", 1), 0);
    }
}
