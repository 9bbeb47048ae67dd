#!/usr/bin/env bash
# Installs what tests/test_playground.py's real-browser test needs on a Debian CI machine:
# Debian's Chromium (the test drives /usr/bin/chromium; we never run `playwright install`,
# which would download a second browser from outside PyPI) and the Python Playwright driver.
# Called by .ci/run before `make test`. Without these the browser test skips with a reason,
# except under CI=true (as .ci/run sets), where it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium chromium-driver
test -x .venv/bin/python || python3 -m venv .venv
.venv/bin/python -m pip install -q "$(grep -E '^playwright' requirements.txt | cut -d'#' -f1 | tr -d ' ')"
