-- A TRUNCATE empties user_sessions without one change event per row, so a
-- change-data-capture topic would go on holding every truncated row as it
-- last was (docs/cdc.md#truncate). This trigger makes the truncate visible
-- in the same stream: in the truncating transaction it writes one row,
-- `__truncated__`, whose streamed change tells the projection the topic no
-- longer says which sessions exist. The row is revoked, so no check admits
-- it; the documented cleanup keeps it (ids starting `__` are reserved).
CREATE OR REPLACE FUNCTION user_sessions_note_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format(
        'INSERT INTO %I.%I (id, user_id, created_at, revoked_at)
         VALUES (''__truncated__'', ''__truncated__'', now(), now())
         ON CONFLICT (id) DO UPDATE SET created_at = now(), revoked_at = now()',
        TG_TABLE_SCHEMA, TG_TABLE_NAME);
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS user_sessions_truncated ON user_sessions;
CREATE TRIGGER user_sessions_truncated
    AFTER TRUNCATE ON user_sessions
    FOR EACH STATEMENT EXECUTE FUNCTION user_sessions_note_truncate();
