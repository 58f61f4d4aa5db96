#!/usr/bin/env bash
# Set up everything `make run` and `make test` need, on a fresh machine, idempotently:
# Debian packages the tests use (PostgreSQL server, SoftHSM2, Chromium), a virtual environment, pinned
# Python packages (requirements.lock), and the project itself in editable mode.
set -euo pipefail
cd "$(dirname "$0")/.."

want_debs=()
if [ "${1:-}" = "test" ]; then
  [ -x /usr/lib/postgresql/15/bin/initdb ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || want_debs+=(postgresql)
  [ -e /usr/lib/softhsm/libsofthsm2.so ] && command -v softhsm2-util >/dev/null || want_debs+=(softhsm2)
  # The browser tests drive Debian's chromium through Playwright (never `playwright install`).
  [ -x /usr/bin/chromium ] || want_debs+=(chromium)
fi
if [ "${1:-}" = "bench" ]; then
  command -v wrk >/dev/null || want_debs+=(wrk)  # the HTTP load generator (bench/wrk.py)
  [ -x /usr/bin/chromium ] || want_debs+=(chromium)  # first contentful paint (bench/bench_pages.py)
fi
if [ ${#want_debs[@]} -gt 0 ]; then
  echo "bootstrap: installing Debian packages: ${want_debs[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${want_debs[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  for candidate in python3.13 python3.12 python3.11; do
    if command -v "$candidate" >/dev/null; then PY=$candidate; break; fi
  done
fi
# pip, quiet; a machine whose pip configuration names package indexes that do not exist gets one
# harmless warning per package from them, which would bury the output of `make run`: dropped.
pip_install() {
  { .venv/bin/python -m pip install -q --disable-pip-version-check "$@" 2>&1 1>&3 3>&- \
      | sed '/is ignored: it is neither a file nor a directory/d' >&2; } 3>&1
}
stamp=.venv/.stamp-$(cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "bootstrap: creating .venv and installing pinned packages"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  pip_install -r requirements.lock
  pip_install --no-deps --no-build-isolation -e .
  rm -f .venv/.stamp-*
  touch "$stamp"
fi
