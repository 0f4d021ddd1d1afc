# Sourced by the scripts here: make .venv with recsite and its dev tools installed.
# Re-installs only when pyproject.toml changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "recsite needs Python 3.11 or newer (found: $("$PYTHON" --version 2>&1))." >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  if ! "$PYTHON" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    if [ "$(id -u)" = 0 ]; then
      echo "installing python3-venv with apt-get ..." >&2
      DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      "$PYTHON" -m venv .venv
    else
      echo "Python's venv module is missing: sudo apt-get install -y python3-venv" >&2
      exit 2
    fi
  fi
fi
STAMP=".venv/.recsite-installed"
WANT="$(sha256sum pyproject.toml | cut -d' ' -f1)-${RECSITE_EXTRAS:-dev}"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "installing recsite into .venv (first run takes a minute) ..." >&2
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e ".[${RECSITE_EXTRAS:-dev}]"
  echo "$WANT" > "$STAMP"
fi
