#!/usr/bin/env bash
# Install TimescaleDB (Apache-2 edition) into the local PostgreSQL on Debian.
#
# Debian 13 ships a binary package for its own PostgreSQL; Debian 12 has none, so
# the Apache-2 edition is built from Debian 13's source package (tsl/ removed).
# Idempotent: does nothing when the extension is already available and preloaded.
set -euo pipefail

PG_MAJOR="${PG_MAJOR:-$(ls /etc/postgresql 2>/dev/null | sort -n | tail -n1)}"
[ -n "$PG_MAJOR" ] || { echo "no PostgreSQL cluster under /etc/postgresql" >&2; exit 1; }
CONF="/etc/postgresql/${PG_MAJOR}/main/postgresql.conf"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

have_extension() {
  [ -f "/usr/share/postgresql/${PG_MAJOR}/extension/timescaledb.control" ]
}

if ! have_extension; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  if apt-cache show "postgresql-${PG_MAJOR}-timescaledb" >/dev/null 2>&1; then
    $SUDO apt-get install -y -qq "postgresql-${PG_MAJOR}-timescaledb"
  else
    src_list=/etc/apt/sources.list.d/trixie-src.sources
    if [ ! -f "$src_list" ]; then
      $SUDO tee "$src_list" >/dev/null <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    fi
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq cmake dpkg-dev "postgresql-server-dev-${PG_MAJOR}" >/dev/null
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    (cd "$work" && apt-get source -qq --download-only timescaledb >/dev/null && dpkg-source -x --no-check timescaledb_*.dsc src >/dev/null)
    (cd "$work/src" && ./bootstrap -DAPACHE_ONLY=1 -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF \
        -DWARNINGS_AS_ERRORS=OFF -DUSE_OPENSSL=OFF -DPG_CONFIG="/usr/lib/postgresql/${PG_MAJOR}/bin/pg_config" >/dev/null \
      && $SUDO make -C build -j"$(nproc)" install >/dev/null)
  fi
fi

restart=0
if ! grep -Eq "^\s*shared_preload_libraries\s*=.*timescaledb" "$CONF"; then
  echo "shared_preload_libraries = 'timescaledb'" | $SUDO tee -a "$CONF" >/dev/null
  restart=1
fi
if ! grep -Eq "^\s*timescaledb.telemetry_level\s*=" "$CONF"; then
  echo "timescaledb.telemetry_level = off" | $SUDO tee -a "$CONF" >/dev/null
  restart=1
fi
if [ "$restart" = 1 ]; then
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" main restart
fi
echo "timescaledb ready for PostgreSQL ${PG_MAJOR}"
