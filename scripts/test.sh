#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine with Python 3.11 and pip
# (Debian's chromium and nginx for the browser and serving tests, plotboard with its test
# extras), then runs the suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! { [ -x /usr/bin/chromium ] && [ -x /usr/sbin/nginx ]; }; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    chromium nginx-light fonts-dejavu-core >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check -e '.[test,dask]'
python3 -m pytest -q "$@"
