"""MQTT ingest: sources, envelopes, codecs, normalisation, the worker."""

DEFAULT_CLIENT_ID = "bydata-ingest"
"""The MQTT client id of a worker given none (``BYDATA_INGEST_CLIENT_ID``): fine for one worker only."""
