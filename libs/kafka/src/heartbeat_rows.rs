//! The CDC heartbeat rows: which ids to use so that one lands on every
//! partition of the change-event topic, and the connector's
//! `heartbeat.action.query` that writes them all in one transaction.
//!
//! Each heartbeat row's change carries its commit instant to the partition
//! its key hashes to; the projection is fresh as of the oldest heartbeat
//! read over all partitions, so a partition no heartbeat row reaches keeps
//! it from ever being Live. Fixed ids cover every partition only by luck;
//! here each partition gets the first `__heartbeat__<n>` whose key Kafka's
//! default partitioner sends to it. The query is an upsert: rows deleted by
//! a cleanup or a truncate come back with the next heartbeat, and their
//! `revoked_at` stays recent, so no age-based cleanup picks them. The same
//! statement upserts the cutoffs table's heartbeat row, which tells the
//! projection that table's changes reach its topic.

use revocation_core::{CUTOFFS_HEARTBEAT_USER, HEARTBEAT_PREFIX};

use crate::partitioner::default_partition;

/// The record key Debezium writes for a row id, with Kafka Connect's JSON
/// converter and `key.converter.schemas.enable=false` (our connector
/// configuration): `{"id":"<id>"}`.
pub fn debezium_key(id: &str) -> String {
    format!(r#"{{"id":"{id}"}}"#)
}

/// One heartbeat row id per partition, in partition order: the first
/// `__heartbeat__<n>` whose key lands on it.
///
/// ```
/// let ids = revocation_kafka::heartbeat_ids(3);
/// assert_eq!(ids.len(), 3);
/// for (p, id) in ids.iter().enumerate() {
///     let key = revocation_kafka::debezium_key(id);
///     assert_eq!(revocation_kafka::default_partition(key.as_bytes(), 3), p as u32);
/// }
/// ```
pub fn heartbeat_ids(partitions: u32) -> Vec<String> {
    let partitions = partitions.max(1);
    let mut ids: Vec<Option<String>> = vec![None; partitions as usize];
    let mut missing = partitions;
    let mut n = 0u64;
    while missing > 0 {
        let id = format!("{HEARTBEAT_PREFIX}{n}");
        let slot = &mut ids[default_partition(debezium_key(&id).as_bytes(), partitions) as usize];
        if slot.is_none() {
            *slot = Some(id);
            missing -= 1;
        }
        n += 1;
    }
    ids.into_iter().flatten().collect()
}

/// The connector's `heartbeat.action.query` for `table` (schema-qualified)
/// on a topic of `partitions` partitions, in one statement (one
/// transaction): an upsert of the cutoffs table's heartbeat row
/// (`user_session_cutoffs` of the same schema, user
/// [`CUTOFFS_HEARTBEAT_USER`]), then of every sessions heartbeat row,
/// revoked (no check admits them), `created_at` and `revoked_at` set to the
/// transaction's time.
///
/// ```
/// let query = revocation_kafka::heartbeat_action_query("public.user_sessions", 2);
/// assert!(query.contains("INSERT INTO public.user_session_cutoffs"));
/// assert!(query.contains("INSERT INTO public.user_sessions"));
/// ```
pub fn heartbeat_action_query(table: &str, partitions: u32) -> String {
    let ids: Vec<String> = heartbeat_ids(partitions).iter().map(|id| format!("'{id}'")).collect();
    let cutoffs = match table.rsplit_once('.') {
        Some((schema, _)) => format!("{schema}.user_session_cutoffs"),
        None => "user_session_cutoffs".to_owned(),
    };
    format!(
        "WITH cutoffs AS (INSERT INTO {cutoffs} (user_id, not_before) VALUES ('{CUTOFFS_HEARTBEAT_USER}', now()) \
         ON CONFLICT (user_id) DO UPDATE SET not_before = EXCLUDED.not_before) \
         INSERT INTO {table} (id, user_id, created_at, revoked_at) \
         SELECT id, '', now(), now() FROM unnest(ARRAY[{}]) AS id \
         ON CONFLICT (id) DO UPDATE SET created_at = EXCLUDED.created_at, revoked_at = EXCLUDED.revoked_at",
        ids.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_partition_count_up_to_1024_gets_a_heartbeat_on_each_partition() {
        for partitions in (1..=64).chain([100, 256, 1000, 1024]) {
            let ids = heartbeat_ids(partitions);
            assert_eq!(ids.len(), partitions as usize);
            for (p, id) in ids.iter().enumerate() {
                assert_eq!(default_partition(debezium_key(id).as_bytes(), partitions), p as u32, "{partitions}: {id}");
            }
        }
    }

    #[test]
    fn the_64_fixed_ids_of_before_missed_partitions_of_a_24_partition_topic() {
        let covered: std::collections::BTreeSet<u32> = (0..64)
            .map(|n| default_partition(debezium_key(&format!("{HEARTBEAT_PREFIX}{n}")).as_bytes(), 24))
            .collect();
        assert!(covered.len() < 24, "the issue's finding: {covered:?}");
    }
}
