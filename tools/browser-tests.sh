#!/usr/bin/env bash
# Browser tests of the chat page and /docs (tools/browser_test.py) in headless Chromium.
# Installs Debian's chromium and chromium-driver (and an emoji font for the screenshots) when
# missing, and Selenium into .local/browser-venv. Expects the servers of `make services` and a
# built debug binary (make test provides both); starts and restarts the service itself on
# BROWSER_TEST_PORT (18082). Screenshots: .local/browser-screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV="$ROOT/.local/browser-venv"
log() { echo "[browser] $*"; }

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  log "installing chromium and chromium-driver"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    chromium chromium-driver fonts-noto-color-emoji >/dev/null
fi

# shellcheck source=tools/python-venv.sh
source tools/python-venv.sh
ensure_venv "$VENV" tools/browser-requirements.txt

mkdir -p .local
"$ROOT/.build/debug/messages-service" migrate >/dev/null
exec "$VENV/bin/python" tools/browser_test.py --port "${BROWSER_TEST_PORT:-18082}" \
  --chromium "$(command -v chromium)" --chromedriver "$(command -v chromedriver)" "$@"
