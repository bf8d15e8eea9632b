-- Compression and continuous aggregates: only under the Timescale license (the community
-- Docker image). The Apache-2 edition refuses them, so Python runs this file only when
-- current_setting('timescaledb.license') = 'timescale'. Idempotent.
-- Segments and order cover the unique index (datastream_id, phenomenon_time, dedup_key), so a late
-- reading written into a compressed chunk is checked against its own Datastream's batches only.
ALTER TABLE observations SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'datastream_id',
    timescaledb.compress_orderby = 'phenomenon_time DESC, dedup_key'
);
SELECT add_compression_policy('observations', INTERVAL '30 days', if_not_exists => true);

CREATE MATERIALIZED VIEW IF NOT EXISTS observations_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT datastream_id,
       time_bucket(INTERVAL '1 hour', phenomenon_time) AS bucket,
       count(*)                               AS n,
       count(result_number)                   AS n_number,
       avg(result_number)                     AS avg,
       min(result_number)                     AS min,
       max(result_number)                     AS max,
       sum(result_number)                     AS sum,
       first(result_number, phenomenon_time)  AS first,
       last(result_number, phenomenon_time)   AS last
FROM observations
GROUP BY datastream_id, bucket
WITH NO DATA;

SELECT add_continuous_aggregate_policy('observations_hourly',
    start_offset => INTERVAL '7 days', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '15 minutes', if_not_exists => true);
