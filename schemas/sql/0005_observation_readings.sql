-- Observations: the same reading delivered twice is stored once; any other Observation is its own.
--
-- Until now (datastream_id, phenomenon_time) was the primary key and ingest inserted with ON CONFLICT
-- DO NOTHING, so a different result at a time already stored (a revised NILU hour, a corrected
-- reading) was dropped and counted as a duplicate, and the SensorThings API refused a second
-- Observation at the same phenomenonTime, a rule OGC 18-088 does not have. Now:
--
-- * dedup_key identifies a reading as ingest received it: observation_dedup_key() of its result
--   and phenomenon time end, a stable hash. Ingest sets it; the SensorThings API leaves it NULL.
-- * The unique index (datastream_id, phenomenon_time, dedup_key) makes the same reading (same
--   Datastream, phenomenon time, result and end) arriving twice one row (INSERT ... ON CONFLICT DO
--   NOTHING), while a different result at the same time is a row of its own. NULLs are distinct,
--   so the API's writes meet no uniqueness rule at all. The index still serves every read by
--   Datastream and time range (latest per Datastream, time ranges) through its first two columns.
-- * No primary key: ids come from the identity column and are found through observations_id. On
--   a TimescaleDB hypertable a unique index must include the time column, and (id, phenomenon_time)
--   would check each late row written into a compressed chunk against batches of every Datastream.
--
-- Rows stored before get their key, so redeliveries and replays of them are still absorbed; the
-- upgrade rewrites the table once. Compressed chunks (Timescale license) are decompressed first, as
-- TimescaleDB allows no constraint changes while compression is on; features/timescaledb_tsl.sql,
-- which runs after the migrations, turns compression and its policy on again.

CREATE FUNCTION observation_dedup_key(result_number double precision, result_boolean boolean,
                                      result_text text, result_json jsonb, phenomenon_time_end timestamptz)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  -- 64 bits of MD5 over the typed result and the end: the number's IEEE bits, the boolean, the text,
  -- the jsonb's canonical text (sorted keys), the end's microseconds; a tag keeps kinds apart and the
  -- end follows the last '|' (it holds none). Independent of session settings and server version.
  SELECT ('x' || left(md5(
           coalesce('n' || encode(float8send(result_number), 'hex'),
                    'b' || result_boolean::text,
                    't' || result_text,
                    'j' || result_json::text,
                    '-')
           || '|' || coalesce(encode(timestamptz_send(phenomenon_time_end), 'hex'), '-')), 16))::bit(64)::bigint
$$;

DO $$
DECLARE
  compressed boolean := false;
BEGIN
  -- Dynamic SQL throughout: on plain PostgreSQL none of TimescaleDB's objects exist.
  IF to_regclass('timescaledb_information.hypertables') IS NOT NULL THEN
    EXECUTE 'SELECT coalesce(bool_or(compression_enabled), false) FROM timescaledb_information.hypertables'
            ' WHERE hypertable_name = ''observations''' INTO compressed;
  END IF;
  IF compressed THEN
    EXECUTE 'SELECT remove_compression_policy(''observations'', if_exists => true)';
    EXECUTE 'SELECT count(decompress_chunk(c, if_compressed => true)) FROM show_chunks(''observations'') AS c';
    EXECUTE 'ALTER TABLE observations SET (timescaledb.compress = false)';
  END IF;
END
$$;

ALTER TABLE observations DROP CONSTRAINT observations_pkey;
ALTER TABLE observations ADD COLUMN dedup_key bigint;
UPDATE observations
SET dedup_key = observation_dedup_key(result_number, result_boolean, result_text, result_json, phenomenon_time_end);
CREATE UNIQUE INDEX observations_reading ON observations (datastream_id, phenomenon_time, dedup_key);
