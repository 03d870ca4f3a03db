#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine with Python 3.11 and pip
# (Debian's chromium and nginx for the browser and serving tests, plotboard with its test
# extras), then runs the suite. Extra arguments go to pytest.
#
# Python packages go into the active virtual environment; with none active, into .venv/ in
# the repository (created here), so an externally managed Python (Debian's /usr/bin/python3,
# PEP 668) works too.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! { [ -x /usr/bin/chromium ] && [ -x /usr/sbin/nginx ]; }; then
  apt_install chromium nginx-light fonts-dejavu-core
fi

if ! python3 -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)'; then
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv 2>/dev/null || { apt_install python3-venv && rm -rf .venv && python3 -m venv .venv; }
  fi
  export VIRTUAL_ENV="$PWD/.venv" PATH="$PWD/.venv/bin:$PATH"  # tests start plotboard, supervisord
fi
python -m pip install -q --disable-pip-version-check -e '.[test,dask]'
python -m pytest -q "$@"
