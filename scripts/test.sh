#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine with Python 3.11 and pip
# (Debian's chromium and nginx for the browser and serving tests, prometheus for promtool and a
# real Prometheus scraping the daemon, plotboard with its test
# extras, each dependency at the newest version its range allows: what a fresh install gets),
# prints the versions it runs with, then runs the suite. Extra arguments go to pytest; the exit
# status is pytest's. PLOTBOARD_TEST_NO_INSTALL=1 skips the installs (the suite's own test of
# this script uses it). The suite runs on one worker per CPU (pytest-xdist, at most 4), a test
# file at a time on each: most of a test's time is spent waiting for processes it started.
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

PYTEST=(python -m pytest -q --numprocesses=logical --maxprocesses=4 --dist=loadfile)
if [ "${PLOTBOARD_TEST_NO_INSTALL:-}" = 1 ]; then
  exec "${PYTEST[@]}" "$@"
fi

if ! { [ -x /usr/bin/chromium ] && [ -x /usr/sbin/nginx ] && [ -x /usr/bin/openssl ] && [ -x /usr/bin/promtool ] \
     && [ -x /usr/bin/prometheus ]; }; then
  # openssl: the mail tests' certificates; prometheus (with promtool): the metrics tests
  apt_install chromium nginx-light fonts-dejavu-core openssl prometheus
fi

if ! python3 -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)'; then
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv 2>/dev/null || { apt_install python3-venv && rm -rf .venv && python3 -m venv .venv; }
  fi
  export VIRTUAL_ENV="$PWD/.venv" PATH="$PWD/.venv/bin:$PATH"  # tests start plotboard, supervisord
fi
python -m pip install -q --disable-pip-version-check --upgrade --upgrade-strategy eager -e '.[test,dask]'
echo "versions: $(python --version 2>&1 | tr -d '\n'); $(python -m pip list --disable-pip-version-check --format=freeze 2>/dev/null \
  | grep -iE '^(matplotlib|numpy|watchdog|jinja2|cronsim|tomli|prometheus.client|distributed|pytest|playwright|psutil|supervisor|aiosmtpd|boto3|moto|pytest.xdist)==' | tr '\n' ' ')"
echo "versions: $(/usr/bin/chromium --version 2>/dev/null); $(/usr/sbin/nginx -v 2>&1); $(/usr/bin/promtool --version 2>&1 | head -1)"
exec "${PYTEST[@]}" "$@"
