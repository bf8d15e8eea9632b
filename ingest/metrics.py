"""Prometheus metrics of one ingest worker, fed from the same tally that is committed with the rows.

The counters mirror ``ingest_counters`` (see ``store.counters`` for what each one counts),
so the accounting identity ``received = stored + duplicate + quarantined`` holds for the
metrics of a worker too. Each worker serves its own registry; Prometheus sums them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, Metric, start_http_server
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from store import counters

_PLAIN = {
    counters.RECEIVED: "Messages delivered by the broker on a source topic (redeliveries included).",
    counters.DECODED: "Messages decoded and normalised.",
    counters.STORED: "Messages that stored at least one new observation (or carried none).",
    counters.DUPLICATE: "Messages all of whose observations were already stored.",
    counters.OBSERVATIONS_STORED: "Observations stored.",
    counters.OBSERVATIONS_DUPLICATE: "Observations already stored (absorbed duplicates).",
    counters.OWN_NOTIFICATION: "SensorThings notifications on create topics (Bydata's own fan-out), ignored.",
}


class IngestMetrics:
    def __init__(self, worker: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        Info("bydata_ingest", "The ingest worker.", registry=r).info({"worker": worker})
        self.plain = {name: Counter(f"bydata_ingest_{name}", help_, registry=r) for name, help_ in _PLAIN.items()}
        self.quarantined = Counter(
            "bydata_ingest_quarantined", "Messages quarantined, by reason.", ["reason"], registry=r
        )
        self.flagged = Counter(
            "bydata_ingest_flagged", "Newly stored observations carrying a quality flag, by flag.", ["flag"], registry=r
        )
        self.unmapped = Counter(
            "bydata_ingest_unmapped_fields",
            "Messages carrying a field their device model neither maps nor ignores, by model and field"
            " (at most a bounded number of fields each; the rest as '(other)').",
            ["model", "field"],
            registry=r,
        )
        self.db_retries = Counter(
            "bydata_ingest_database_retries", "Batch writes retried because the database was unreachable.", registry=r
        )
        self.inbox = Gauge("bydata_ingest_inbox", "Messages received and waiting to be decoded.", registry=r)
        self.batch_seconds = Histogram(
            "bydata_ingest_batch_write_seconds",
            "Time to write and commit one batch.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=r,
        )
        self.batch_size = Histogram(
            "bydata_ingest_batch_messages",
            "Messages per batch.",
            buckets=(1, 10, 100, 500, 1000, 2000, 5000, 10000),
            registry=r,
        )

    def watch_edge(self, stats: Mapping[str, int]) -> None:
        """Expose the MQTT edge's own counts (kept by its network thread) at scrape time."""
        self.registry.register(_EdgeCollector(stats))

    def record(self, tally: Mapping[tuple[str, str], int]) -> None:
        """Add a committed batch's tally (``store.counters`` names)."""
        for (name, label), value in tally.items():
            if not value:
                continue
            if name in self.plain:
                self.plain[name].inc(value)
            elif name == counters.QUARANTINED:
                self.quarantined.labels(reason=label).inc(value)
            elif name == counters.FLAGGED:
                self.flagged.labels(flag=label).inc(value)

    def record_unmapped(self, counts: Mapping[str, int]) -> None:
        """Add a committed batch's unmapped fields (labels ``model/field``, see ``ingest.process``)."""
        for label, value in counts.items():
            model, _, name = label.partition("/")
            self.unmapped.labels(model=model, field=name).inc(value)

    def serve(self, host: str, port: int) -> WSGIServer:
        """Expose ``/metrics`` over HTTP (a daemon thread of prometheus-client); ``shutdown()`` stops it."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server


class _EdgeCollector(Collector):
    def __init__(self, stats: Mapping[str, int]) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        fanout = CounterMetricFamily(
            "bydata_ingest_fanout", "Live SensorThings notifications, by result.", labels=["result"]
        )
        fanout.add_metric(["published"], self.stats.get("published", 0))
        fanout.add_metric(["dropped"], self.stats.get("publish_dropped", 0))
        yield fanout
        yield CounterMetricFamily(
            "bydata_ingest_acks_dropped",
            "Acknowledgements not sent because the connection was replaced (the broker resends).",
            value=self.stats.get("acks_dropped", 0),
        )
