-- Quarantine: a message is kept whole however long its topic is.
--
-- An MQTT topic may be up to 65,535 bytes, more than a B-tree entry holds (about 2,700 bytes), so
-- the index on (topic, payload_hash) made the quarantine refuse a message on a long topic, and the
-- batch holding it with it. Repeated payloads are found by their hash alone.
DROP INDEX quarantine_hash;
CREATE INDEX quarantine_payload ON quarantine (payload_hash);
