INSERT INTO {table} AS s (id, user_id, created_at, expires_at)
VALUES ($1, $2, $3, $4)
ON CONFLICT (id) DO UPDATE
    SET user_id = EXCLUDED.user_id, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
    WHERE s.user_id = ''
