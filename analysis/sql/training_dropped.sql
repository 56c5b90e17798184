-- Why tracks of a library are left out of a training table: one count per reason
-- ({missing_counts} is one `count(*) FILTER (WHERE t.track_id NOT IN (…)) AS "<spec>"`
-- per selection). A track can be left out for several reasons at once.
SELECT count(*) AS library_tracks,
       count(*) FILTER (WHERE t.genre IS NULL) AS no_genre
       {missing_counts}
FROM tracks t
WHERE t.library = $library
