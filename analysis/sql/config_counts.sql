-- Tracks per stored config of one extractor, restricted to a library when one is given.
SELECT v.config_hash, count(*) AS tracks
FROM {view} v LEFT JOIN tracks t USING (track_id)
WHERE $library IS NULL OR t.library = $library
GROUP BY ALL
ORDER BY tracks DESC, v.config_hash
