-- One selection's vectors for the kept tracks, with the row each belongs in.
SELECT k.row_idx, {columns}
FROM {view} v JOIN _mfs_kept k USING (track_id)
WHERE v.config_hash = $config_hash
