-- Leaderboard rows, newest run first, best accuracy first within a run.
SELECT *
FROM leaderboard
WHERE $library IS NULL OR library = $library
ORDER BY created_at DESC, accuracy DESC, feature_set
