SELECT ceil(extract(epoch FROM not_before))::bigint FROM {cutoffs} WHERE user_id = $1
