"""The newest stored readings of Datastreams, as the stateful quality checks need them after a restart.

The spike, stuck and counter-reset checks (``ingest.quality``) remember each Datastream's newest
reading, how often in a row its value repeated, and the newest reading that was not a spike. A
process that starts (an ingest worker, an API request) takes that from the store: one statement
for many Datastreams, each answered from its newest rows by the (datastream_id, phenomenon_time)
index, so its cost does not grow with history.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

_CHUNK = 2000  # Datastreams per statement

# Per Datastream: its newest ``cap`` numeric readings not flagged ``skip`` (newest first, ties by
# id), how many of them in a row share the newest value, and the newest not flagged ``spike``.
_RECENT = """
SELECT w.ds, a.t[1], a.v[1],
       coalesce((SELECT min(i) - 1 FROM generate_subscripts(a.v, 1) AS i WHERE a.v[i] <> a.v[1]),
                cardinality(a.v)) AS repeats,
       a.t[r.i], a.v[r.i]
FROM unnest(%(ds)s::bigint[], %(cap)s::int[]) AS w(ds, cap)
CROSS JOIN LATERAL (
    SELECT array_agg(s.phenomenon_time ORDER BY s.phenomenon_time DESC, s.id DESC) AS t,
           array_agg(s.result_number ORDER BY s.phenomenon_time DESC, s.id DESC) AS v,
           array_agg(s.quality_flags ORDER BY s.phenomenon_time DESC, s.id DESC) AS f
    FROM (SELECT o.phenomenon_time, o.id, o.result_number, o.quality_flags FROM observations o
          WHERE o.datastream_id = w.ds AND o.result_number IS NOT NULL AND o.quality_flags & %(skip)s = 0
          ORDER BY o.phenomenon_time DESC, o.id DESC LIMIT w.cap) AS s
) AS a
CROSS JOIN LATERAL (
    SELECT coalesce((SELECT min(i) FROM generate_subscripts(a.f, 1) AS i WHERE a.f[i] & %(spike)s = 0), 1) AS i
) AS r
WHERE a.v IS NOT NULL
"""


@dataclass(frozen=True, slots=True)
class RecentReadings:
    """A Datastream's newest stored reading, its repeats, and its newest reading that was no spike."""

    time: datetime
    value: float
    repeats: int
    ref_time: datetime
    ref_value: float


def recent_readings(
    conn: psycopg.Connection[Any], caps: Mapping[int, int], *, skip_flags: int, spike_flag: int
) -> dict[int, RecentReadings]:
    """For each Datastream in ``caps`` (id -> how many newest rows to look at), what its checks resume from.

    Rows flagged with any of ``skip_flags`` (a time in the future) are left out, as the live checks
    leave them out. Datastreams without numeric readings are missing from the answer.
    """
    found: dict[int, RecentReadings] = {}
    items = list(caps.items())
    for start in range(0, len(items), _CHUNK):
        part = items[start : start + _CHUNK]
        rows = conn.execute(
            _RECENT,
            {"ds": [d for d, _ in part], "cap": [max(1, c) for _, c in part], "skip": skip_flags, "spike": spike_flag},
        ).fetchall()
        for ds, t, v, repeats, ref_t, ref_v in rows:
            found[int(ds)] = RecentReadings(t, float(v), int(repeats), ref_t, float(ref_v))
    return found
