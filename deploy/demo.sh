#!/usr/bin/env bash
# The zero-install demo: a virtual environment with Bydata, then `bydata demo` on the
# embedded PostgreSQL and MQTT broker. Arguments go to `bydata demo` (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e .
exec .venv/bin/bydata demo "$@"
