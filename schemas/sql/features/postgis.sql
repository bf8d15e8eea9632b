-- PostGIS geometries beside the GeoJSON, for geospatial filters. Idempotent.
-- Without PostGIS, the point_lon/point_lat columns of 0001 still serve point locations.
CREATE EXTENSION IF NOT EXISTS postgis;

CREATE OR REPLACE FUNCTION geojson_geometry(g jsonb) RETURNS geometry
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT ST_SetSRID(ST_GeomFromGeoJSON(
           CASE WHEN g->>'type' = 'Feature' THEN g->'geometry' ELSE g END), 4326)
$$;

ALTER TABLE locations
    ADD COLUMN IF NOT EXISTS geom geometry GENERATED ALWAYS AS (geojson_geometry(location)) STORED;
ALTER TABLE features_of_interest
    ADD COLUMN IF NOT EXISTS geom geometry GENERATED ALWAYS AS (geojson_geometry(feature)) STORED;
CREATE INDEX IF NOT EXISTS locations_geom ON locations USING gist (geom);
CREATE INDEX IF NOT EXISTS features_of_interest_geom ON features_of_interest USING gist (geom);
