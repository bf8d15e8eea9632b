-- PostGIS geometries beside the GeoJSON, for geospatial filters. Idempotent.
-- Without PostGIS, the point_lon/point_lat columns of 0001 still serve point locations.
CREATE EXTENSION IF NOT EXISTS postgis;

-- NULL for what has no geometry: a location or feature in another encoding (text, an address
-- object: Location.location and FeatureOfInterest.feature are of type Any), a Feature without
-- a geometry, a FeatureCollection.
CREATE OR REPLACE FUNCTION geojson_geometry(g jsonb) RETURNS geometry
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN jsonb_typeof(g) <> 'object' THEN NULL
    WHEN g->>'type' IN ('Point', 'MultiPoint', 'LineString', 'MultiLineString', 'Polygon', 'MultiPolygon',
                        'GeometryCollection')
      THEN ST_SetSRID(ST_GeomFromGeoJSON(g), 4326)
    WHEN g->>'type' = 'Feature' AND jsonb_typeof(g->'geometry') = 'object'
      THEN ST_SetSRID(ST_GeomFromGeoJSON(g->'geometry'), 4326)
  END
$$;

ALTER TABLE locations
    ADD COLUMN IF NOT EXISTS geom geometry GENERATED ALWAYS AS (geojson_geometry(location)) STORED;
ALTER TABLE features_of_interest
    ADD COLUMN IF NOT EXISTS geom geometry GENERATED ALWAYS AS (geojson_geometry(feature)) STORED;
CREATE INDEX IF NOT EXISTS locations_geom ON locations USING gist (geom);
CREATE INDEX IF NOT EXISTS features_of_interest_geom ON features_of_interest USING gist (geom);
