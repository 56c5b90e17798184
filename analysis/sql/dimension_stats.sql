-- Per-dimension statistics of one embedding column of one extractor config, per group
-- ({group} is NULL or a tracks column). Statistics cover finite values; NaN and ±inf are
-- counted as shares. A dimension is dead when it has no finite value or never varies.
WITH flat AS (
    SELECT {group} AS grp,
           generate_subscripts(v.{column}, 1) - 1 AS dim,
           unnest(v.{column}) AS value
    FROM {view} v LEFT JOIN tracks t USING (track_id)
    WHERE v.config_hash = $config_hash
      AND ($library IS NULL OR t.library = $library)
      AND v.{column} IS NOT NULL
)
SELECT grp AS "group", dim,
       count(*) AS n,
       avg(value) FILTER (WHERE isfinite(value)) AS mean,
       stddev_pop(value) FILTER (WHERE isfinite(value)) AS std,
       min(value) FILTER (WHERE isfinite(value)) AS min,
       max(value) FILTER (WHERE isfinite(value)) AS max,
       avg(isnan(value)::DOUBLE) AS nan_share,
       avg(isinf(value)::DOUBLE) AS inf_share,
       coalesce(min(value) FILTER (WHERE isfinite(value))
                = max(value) FILTER (WHERE isfinite(value)), true) AS dead
FROM flat
GROUP BY grp, dim
ORDER BY grp NULLS FIRST, dim
