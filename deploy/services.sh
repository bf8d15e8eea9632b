#!/usr/bin/env bash
# Make sure the services Bydata's tests and benchmarks use are installed and running on
# this machine (Debian): PostgreSQL with TimescaleDB and PostGIS, and a Mosquitto 2 tuned
# for load on its own port. Installs from Debian's packages what is missing; idempotent.
#
# Prints the environment for the tests, e.g.:  eval "$(deploy/services.sh)"
set -euo pipefail
cd "$(dirname "$0")/.."

MQTT_PORT="${BYDATA_TEST_MQTT_PORT:-18883}"
RUN_DIR="$PWD/.run"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then $SUDO apt-get update -qq >&2; apt_updated=1; fi
  $SUDO apt-get install -y -qq "$@" >&2
}

# --- PostgreSQL ---------------------------------------------------------------
if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
  apt_install postgresql
fi
PG_MAJOR="$(ls /etc/postgresql | sort -n | tail -n1)"
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" main start >&2 || true
fi
PG_MAJOR="$PG_MAJOR" deploy/install-timescaledb.sh >&2
if [ ! -f "/usr/share/postgresql/${PG_MAJOR}/extension/postgis.control" ]; then
  apt_install "postgresql-${PG_MAJOR}-postgis-3"
fi
for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
pg_isready -h 127.0.0.1 -p 5432 >&2

# --- Mosquitto ----------------------------------------------------------------
if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
  apt_install mosquitto
fi
MOSQUITTO="$(command -v mosquitto || echo /usr/sbin/mosquitto)"
mkdir -p "$RUN_DIR"
pidfile="$RUN_DIR/mosquitto-${MQTT_PORT}.pid"
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/${MQTT_PORT}") 2>/dev/null; }
if port_open; then
  : # already running (started by an earlier run of this script)
else
  conf="$RUN_DIR/mosquitto-${MQTT_PORT}.conf"
  # The production file's limits, on a loopback port, without persistence or passwords.
  grep -E '^(max_|persistent_client_expiration)' deploy/mosquitto/mosquitto.conf > "$conf"
  cat >> "$conf" <<CONF
listener ${MQTT_PORT} 127.0.0.1
allow_anonymous true
persistence false
log_dest none
CONF
  nohup "$MOSQUITTO" -c "$conf" >"$RUN_DIR/mosquitto-${MQTT_PORT}.log" 2>&1 &
  echo $! > "$pidfile"
  for _ in $(seq 1 50); do port_open && break; sleep 0.1; done
  port_open || { echo "Mosquitto did not start on port ${MQTT_PORT}" >&2; cat "$RUN_DIR/mosquitto-${MQTT_PORT}.log" >&2; exit 1; }
fi

# Trust authentication on loopback (this project's CI machines) needs nothing more. A stock
# Debian cluster asks for a password on 127.0.0.1: then a test role gets one, set through the
# local socket as the postgres user and kept under .run/ (ignored by git).
DB_URL="postgresql://postgres@127.0.0.1:5432/postgres"
if ! psql "$DB_URL" -Atqc 'SELECT 1' >/dev/null 2>&1; then
  pwfile="$RUN_DIR/pg-test-password"
  [ -s "$pwfile" ] || (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$pwfile")
  pw="$(cat "$pwfile")"
  as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }
  as_postgres psql -q -v ON_ERROR_STOP=1 -v pw="$pw" >&2 <<'SQL'
SELECT format('CREATE ROLE bydata_test LOGIN SUPERUSER PASSWORD %L', :'pw')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bydata_test') \gexec
ALTER ROLE bydata_test PASSWORD :'pw';
SQL
  DB_URL="postgresql://bydata_test:${pw}@127.0.0.1:5432/postgres"
  psql "$DB_URL" -Atqc 'SELECT 1' >/dev/null || { echo "cannot log in to PostgreSQL on 127.0.0.1" >&2; exit 1; }
fi

echo "export BYDATA_TEST_DATABASE_URL=${DB_URL}"
echo "export BYDATA_TEST_MQTT_URL=mqtt://127.0.0.1:${MQTT_PORT}"
