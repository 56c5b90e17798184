-- Tracks of a library that have every selected feature ({has_features} is one
-- `AND t.track_id IN (SELECT track_id FROM <view> WHERE config_hash = … AND <col> IS NOT NULL)`
-- per selection), with the labels a benchmark needs. Sorted so row order is deterministic.
SELECT t.track_id, t.genre, t.split, coalesce(t.artist_id, t.artist) AS artist
FROM tracks t
WHERE t.library = $library {has_features} {has_label}
ORDER BY t.track_id
