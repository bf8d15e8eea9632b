-- Ingest runtime: exactly-once for messages whose rows are not idempotent by content.
--
-- A message without a payload timestamp (airrohr) gets its receive time as phenomenon time,
-- and a quarantined message gets a new quarantine row. If ingest commits such a message and
-- crashes before its PUBACK reaches the broker, the broker resends it (same packet id, DUP
-- set) and a second receive time would store it twice. Each worker therefore logs, in the
-- same transaction as the rows, the packet id, a hash of topic and payload and the first
-- receive time of those messages; a redelivery is recognised by (worker, packet id, hash)
-- and takes its first receive time. A packet id is reused by the broker only after the
-- message that held it was acknowledged, so one row per (worker, packet id) suffices and
-- the log is bounded (at most 65,535 rows per worker) without any pruning.
CREATE TABLE ingest_deliveries (
    worker       text NOT NULL,
    packet_id    integer NOT NULL CHECK (packet_id BETWEEN 1 AND 65535),
    message_hash bytea NOT NULL,
    received_at  timestamptz NOT NULL,
    PRIMARY KEY (worker, packet_id)
);

-- Provisioning finds the Sensor of a device model and the ObservedProperty of a vocabulary key.
CREATE INDEX sensors_device_model ON sensors ((properties ->> 'deviceModel'));
CREATE INDEX observed_properties_property_key ON observed_properties ((properties ->> 'propertyKey'));
