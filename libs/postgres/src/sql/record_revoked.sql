INSERT INTO {table} AS s (id, user_id, revoked_at)
VALUES ($1, '', $2)
ON CONFLICT (id) DO UPDATE
    SET revoked_at = LEAST(COALESCE(s.revoked_at, EXCLUDED.revoked_at), EXCLUDED.revoked_at)
