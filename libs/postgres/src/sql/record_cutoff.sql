INSERT INTO {cutoffs} AS c (user_id, not_before)
VALUES ($1, $2)
ON CONFLICT (user_id) DO UPDATE SET not_before = GREATEST(c.not_before, EXCLUDED.not_before)
