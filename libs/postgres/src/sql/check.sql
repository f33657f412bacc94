SELECT revoked_at, expires_at FROM {table} WHERE id = $1
