-- The table today's verifiers read on every request, and the projection's
-- cold-start fallback reads until it is Live. Unqualified on purpose: the
-- migrator sets search_path to the configured schema (e.g. scrcall, scctime).
CREATE TABLE IF NOT EXISTS user_sessions (
    id          text        PRIMARY KEY,
    user_id     text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    revoked_at  timestamptz
);

-- "Log out everywhere" revokes by user.
CREATE INDEX IF NOT EXISTS user_sessions_user_id_idx ON user_sessions (user_id) WHERE revoked_at IS NULL;
-- Sweeping expired rows.
CREATE INDEX IF NOT EXISTS user_sessions_expires_at_idx ON user_sessions (expires_at) WHERE expires_at IS NOT NULL;
