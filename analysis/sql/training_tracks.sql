-- Every track of a library with its labels and, per selection, whether it has a row of
-- that config ({has_columns} is one
-- `, t.track_id IN (SELECT track_id FROM <view> WHERE config_hash = …) AS has_<i>` per
-- selection; missing vectors are found when the vectors are read; {level_column} is
-- `, t.genre_levels` when a genre level is the label, else empty). Sorted so that row
-- order is deterministic.
SELECT t.track_id, t.genre, t.genres {level_column}, t.split, t.subset,
       coalesce(t.artist_id, t.artist) AS artist
       {has_columns}
FROM tracks t
WHERE t.library = $library
ORDER BY t.track_id
