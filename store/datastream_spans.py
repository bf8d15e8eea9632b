"""What a Datastream derives from its Observations, kept up to date by every writer.

A Datastream's ``phenomenonTime`` and ``resultTime`` are the spans of its Observations' times
and its ``observedArea`` the bounding box of their features of interest (OGC 18-088, 8.2.4).
Reads take them from ``datastreams.phenomenon_time_start/end``, ``result_time_start/end`` and
``observed_area`` instead of probing the Observations per row. Every writer keeps them:

* :func:`widen` after inserting Observations: one set-based ``UPDATE … FROM (SELECT … GROUP BY
  datastream)`` per batch or request (the ingest batch writer and the API's writes call it in
  the transaction that inserts the rows);
* :func:`shrink` after an Observation is deleted or changed: recomputes only a bound that the
  removed values were on;
* :func:`refresh` recomputes everything from the Observations (rows loaded by other means).

Rules: the phenomenon span runs from the earliest phenomenon time to the latest end (an
instant's end is itself). The result span covers the result times that exist. The observed
area is the bounding box of the features' point coordinates (a GeoJSON Point when it is one
place, else a Polygon); a Datastream whose features are not points takes the first feature's
geometry; Observations without a feature (ingest) give the Thing's Location, once. The area is
widened only; deleting Observations does not shrink it.

Lock order: a batch locks its Datastream rows in id order before updating them, so two
writers with overlapping Datastreams wait for each other instead of deadlocking.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import psycopg

_WIDEN = """
WITH batch AS (
    SELECT u.ds,
           min(u.pt) AS p0, max(coalesce(u.pe, u.pt)) AS p1, min(u.rt) AS r0, max(u.rt) AS r1,
           min(f.point_lon) AS x0, max(f.point_lon) AS x1, min(f.point_lat) AS y0, max(f.point_lat) AS y1,
           (array_agg(f.feature ORDER BY f.id) FILTER (WHERE f.id IS NOT NULL AND f.point_lon IS NULL))[1] AS shape,
           bool_or(u.foi IS NOT NULL) AS has_feature
    FROM unnest(%(ds)s::bigint[], %(pt)s::timestamptz[], %(pe)s::timestamptz[], %(rt)s::timestamptz[],
                %(foi)s::bigint[]) AS u(ds, pt, pe, rt, foi)
    LEFT JOIN features_of_interest f ON f.id = u.foi
    GROUP BY u.ds
), locked AS MATERIALIZED (
    SELECT d.id FROM datastreams d WHERE d.id IN (SELECT ds FROM batch) ORDER BY d.id FOR NO KEY UPDATE
)
UPDATE datastreams d SET
    phenomenon_time_start = least(coalesce(d.phenomenon_time_start, (SELECT o.phenomenon_time FROM observations o
        WHERE o.datastream_id = d.id ORDER BY o.phenomenon_time LIMIT 1)), b.p0),
    phenomenon_time_end = greatest(coalesce(d.phenomenon_time_end, (SELECT coalesce(o.phenomenon_time_end,
        o.phenomenon_time) FROM observations o WHERE o.datastream_id = d.id ORDER BY o.phenomenon_time DESC
        LIMIT 1)), b.p1),
    result_time_start = least(d.result_time_start, b.r0),
    result_time_end = greatest(d.result_time_end, b.r1),
    observed_area = CASE
        WHEN b.x0 IS NOT NULL AND (d.observed_area IS NULL OR d.observed_area->>'type' IN ('Point', 'Polygon')) THEN (
            SELECT CASE WHEN x0 = x1 AND y0 = y1
                THEN jsonb_build_object('type', 'Point', 'coordinates', jsonb_build_array(x0, y0))
                ELSE jsonb_build_object('type', 'Polygon', 'coordinates', jsonb_build_array(jsonb_build_array(
                    jsonb_build_array(x0, y0), jsonb_build_array(x1, y0), jsonb_build_array(x1, y1),
                    jsonb_build_array(x0, y1), jsonb_build_array(x0, y0))))
            END
            FROM (
                SELECT least(min((c->>0)::float8), b.x0) AS x0, greatest(max((c->>0)::float8), b.x1) AS x1,
                       least(min((c->>1)::float8), b.y0) AS y0, greatest(max((c->>1)::float8), b.y1) AS y1
                FROM jsonb_array_elements(CASE d.observed_area->>'type'
                    WHEN 'Point' THEN jsonb_build_array(d.observed_area->'coordinates')
                    WHEN 'Polygon' THEN d.observed_area->'coordinates'->0
                    ELSE '[]'::jsonb END) AS c
            ) AS box)
        WHEN d.observed_area IS NOT NULL THEN d.observed_area
        WHEN b.shape IS NOT NULL THEN
            CASE WHEN b.shape->>'type' = 'Feature' THEN b.shape->'geometry' ELSE b.shape END
        WHEN NOT b.has_feature THEN (
            SELECT CASE WHEN l.location->>'type' = 'Feature' THEN l.location->'geometry' ELSE l.location END
            FROM thing_locations tl
            JOIN locations l ON l.id = tl.location_id WHERE tl.thing_id = d.thing_id ORDER BY l.id LIMIT 1)
    END
FROM batch b
JOIN locked k ON k.id = b.ds
WHERE d.id = b.ds
"""

_SHRINK = """
UPDATE datastreams d SET
    phenomenon_time_start = CASE WHEN d.phenomenon_time_start >= %(pt)s THEN (SELECT o.phenomenon_time
        FROM observations o WHERE o.datastream_id = d.id ORDER BY o.phenomenon_time LIMIT 1)
        ELSE d.phenomenon_time_start END,
    phenomenon_time_end = CASE WHEN d.phenomenon_time_end <= %(pe)s THEN (SELECT max(coalesce(o.phenomenon_time_end,
        o.phenomenon_time)) FROM observations o WHERE o.datastream_id = d.id)
        ELSE d.phenomenon_time_end END,
    result_time_start = CASE WHEN d.result_time_start >= %(rt)s THEN (SELECT min(o.result_time)
        FROM observations o WHERE o.datastream_id = d.id) ELSE d.result_time_start END,
    result_time_end = CASE WHEN d.result_time_end <= %(rt)s THEN (SELECT max(o.result_time)
        FROM observations o WHERE o.datastream_id = d.id) ELSE d.result_time_end END
WHERE d.id = %(ds)s
"""

_REFRESH = """
UPDATE datastreams d SET (phenomenon_time_start, phenomenon_time_end, result_time_start, result_time_end) = (
    SELECT min(o.phenomenon_time), max(coalesce(o.phenomenon_time_end, o.phenomenon_time)),
           min(o.result_time), max(o.result_time)
    FROM observations o WHERE o.datastream_id = d.id)
WHERE %(all)s OR d.id = ANY(%(ids)s)
"""


def widen(
    conn: psycopg.Connection[Any],
    datastream_ids: Sequence[int],
    phenomenon_times: Sequence[datetime],
    phenomenon_time_ends: Sequence[datetime | None],
    result_times: Sequence[datetime | None],
    *,
    features: Sequence[int | None] | None = None,
) -> int:
    """Widen the Datastreams of newly stored Observations (one entry per Observation); rows updated.

    Call it in the transaction that inserted the Observations, after the insert. ``features``:
    each Observation's FeatureOfInterest id (None, or omitted, where it has none).
    """
    if not datastream_ids:
        return 0
    params = {
        "ds": list(datastream_ids),
        "pt": list(phenomenon_times),
        "pe": list(phenomenon_time_ends),
        "rt": list(result_times),
        "foi": list(features) if features is not None else [None] * len(datastream_ids),
    }
    return conn.execute(_WIDEN, params).rowcount


def widen_bounds(
    conn: psycopg.Connection[Any],
    bounds: Mapping[int, tuple[datetime, datetime, datetime | None, datetime | None]],
) -> int:
    """:func:`widen` from each Datastream's bounds over a batch: (first phenomenon time, last
    phenomenon time or end, first and last result time); rows updated.

    A batch of readings holds thousands of rows for a few hundred Datastreams: its bounds, found
    in one pass by the caller, are two entries per Datastream instead of one per row (passing
    10,000 times as arrays cost the ingest writer a third of its time).
    """
    ds: list[int] = []
    pt: list[datetime] = []
    pe: list[datetime] = []
    rt: list[datetime | None] = []
    for datastream_id, (first, last, result_first, result_last) in bounds.items():
        ds += (datastream_id, datastream_id)
        pt += (first, first)
        pe += (last, last)
        rt += (result_first, result_last)
    return widen(conn, ds, pt, pe, rt)


def shrink(
    conn: psycopg.Connection[Any],
    datastream_id: int,
    phenomenon_time: datetime,
    phenomenon_time_end: datetime | None,
    result_time: datetime | None,
) -> None:
    """After an Observation with these times left the Datastream: recompute the bounds it was on."""
    params = {
        "ds": datastream_id,
        "pt": phenomenon_time,
        "pe": phenomenon_time_end or phenomenon_time,
        "rt": result_time,
    }
    conn.execute(_SHRINK, params)


def refresh(conn: psycopg.Connection[Any], datastream_ids: Iterable[int] | None = None) -> int:
    """Recompute the time spans from the Observations (all Datastreams when ``datastream_ids`` is None)."""
    ids = None if datastream_ids is None else list(datastream_ids)
    return conn.execute(_REFRESH, {"all": ids is None, "ids": ids or []}).rowcount
