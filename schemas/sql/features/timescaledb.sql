-- Observations as a TimescaleDB hypertable (any license, Apache-2 included). Idempotent.
CREATE EXTENSION IF NOT EXISTS timescaledb;
SELECT create_hypertable('observations', by_range('phenomenon_time', INTERVAL '7 days'),
                         if_not_exists => true, migrate_data => true);
