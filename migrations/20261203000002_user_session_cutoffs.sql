-- Per-user cutoffs ("log out everywhere"): every session of user_id created,
-- and every token issued to them, before not_before is revoked. Read beside
-- user_sessions by the fallback and by --mode postgres-only, so they answer
-- as the projection does. Unqualified on purpose (see the first migration).
CREATE TABLE IF NOT EXISTS user_session_cutoffs (
    user_id    text        PRIMARY KEY,
    not_before timestamptz NOT NULL
);

-- A cutoff only moves forward, as in the projection (a maximum): an update
-- that would move it back keeps the later instant.
CREATE OR REPLACE FUNCTION user_session_cutoffs_only_forward() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.not_before := greatest(OLD.not_before, NEW.not_before);
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS user_session_cutoffs_forward ON user_session_cutoffs;
CREATE TRIGGER user_session_cutoffs_forward
    BEFORE UPDATE ON user_session_cutoffs
    FOR EACH ROW EXECUTE FUNCTION user_session_cutoffs_only_forward();

-- A TRUNCATE of the cutoffs empties them in Postgres while a change-data-
-- capture topic goes on holding them (docs/cdc.md#truncate): as for
-- user_sessions, the truncating transaction writes the `__truncated__`
-- marker into user_sessions (same schema), which tells the projection the
-- topic no longer says what exists.
CREATE OR REPLACE FUNCTION user_session_cutoffs_note_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format(
        'INSERT INTO %I.user_sessions (id, user_id, created_at, revoked_at)
         VALUES (''__truncated__'', ''__truncated__'', now(), now())
         ON CONFLICT (id) DO UPDATE SET created_at = now(), revoked_at = now()',
        TG_TABLE_SCHEMA);
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS user_session_cutoffs_truncated ON user_session_cutoffs;
CREATE TRIGGER user_session_cutoffs_truncated
    AFTER TRUNCATE ON user_session_cutoffs
    FOR EACH STATEMENT EXECUTE FUNCTION user_session_cutoffs_note_truncate();
