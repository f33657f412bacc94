SELECT s.revoked_at, s.expires_at,
       c.not_before IS NOT NULL
           AND floor(extract(epoch FROM s.created_at)) < ceil(extract(epoch FROM c.not_before)) AS cut_off
FROM {table} s LEFT JOIN {cutoffs} c ON c.user_id = s.user_id
WHERE s.id = $1
