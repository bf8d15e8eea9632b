-- Observations: the Datastream reference checked once per statement, not once per row.
--
-- The foreign key observations.datastream_id -> datastreams(id) checked every row on its own: a
-- query and a row lock per Observation, about half the cost of a COPY into observations and a
-- third of ingest's batch move (EXPLAIN ANALYZE; README, ingest benchmark). The same rule is now
-- kept by triggers that see a whole statement's rows at once (transition tables, which
-- TimescaleDB hypertables support):
--
-- * after INSERT and after UPDATE of observations: every Datastream the new rows name must exist,
--   and is locked FOR KEY SHARE (as the foreign key locks it) until the transaction ends, so that
--   a concurrent DELETE of the Datastream waits for it; otherwise the statement fails with the
--   foreign key's SQLSTATE (23503), message and detail;
-- * after DELETE of datastreams (directly, or cascaded from a Thing, Sensor or ObservedProperty):
--   their Observations are deleted (the foreign key's ON DELETE CASCADE, OGC 18-088 table 25);
-- * an update of datastreams.id that Observations still name fails, as it did (NO ACTION);
-- * TRUNCATE datastreams empties observations too, as TRUNCATE ... CASCADE did.
--
-- The Observations' FeatureOfInterest keeps its foreign key: ingest leaves it NULL, which the
-- check passes at once.

ALTER TABLE observations DROP CONSTRAINT observations_datastream_id_fkey;

CREATE FUNCTION observations_datastream_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  wanted bigint[];
  locked bigint[];
BEGIN
  SELECT array_agg(DISTINCT datastream_id ORDER BY datastream_id) INTO wanted FROM new_rows;
  IF wanted IS NULL THEN
    RETURN NULL;
  END IF;
  SELECT array_agg(id ORDER BY id) INTO locked
  FROM (SELECT d.id FROM datastreams d WHERE d.id = ANY (wanted) ORDER BY d.id FOR KEY SHARE OF d) AS l;
  IF locked IS DISTINCT FROM wanted THEN
    RAISE foreign_key_violation USING
      MESSAGE = 'insert or update on table "observations" violates foreign key constraint'
                ' "observations_datastream_id_fkey"',
      DETAIL = format('Key (datastream_id)=(%s) is not present in table "datastreams".',
                      (SELECT min(w) FROM unnest(wanted) AS w WHERE w <> ALL (coalesce(locked, '{}'))));
  END IF;
  RETURN NULL;
END
$$;

-- A trigger with transition tables takes one event only: one for INSERT, one for UPDATE.
CREATE TRIGGER observations_datastream_insert AFTER INSERT ON observations
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION observations_datastream_check();
CREATE TRIGGER observations_datastream_update AFTER UPDATE ON observations
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION observations_datastream_check();

CREATE FUNCTION datastreams_delete_observations() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM observations o USING old_rows d WHERE o.datastream_id = d.id;
  RETURN NULL;
END
$$;
CREATE TRIGGER datastreams_delete_observations AFTER DELETE ON datastreams
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION datastreams_delete_observations();

CREATE FUNCTION datastreams_keep_referenced_id() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM observations WHERE datastream_id = OLD.id) THEN
    RAISE foreign_key_violation USING
      MESSAGE = 'update on table "datastreams" violates foreign key constraint "observations_datastream_id_fkey"'
                ' on table "observations"',
      DETAIL = format('Key (id)=(%s) is still referenced from table "observations".', OLD.id);
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER datastreams_keep_referenced_id BEFORE UPDATE OF id ON datastreams
  FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION datastreams_keep_referenced_id();

CREATE FUNCTION datastreams_truncate_observations() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  TRUNCATE observations;
  RETURN NULL;
END
$$;
CREATE TRIGGER datastreams_truncate_observations BEFORE TRUNCATE ON datastreams
  FOR EACH STATEMENT EXECUTE FUNCTION datastreams_truncate_observations();
