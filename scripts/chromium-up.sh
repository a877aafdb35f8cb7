#!/usr/bin/env bash
# Debian's Chromium for the browser tests (tests/rehearsal/test_workspace_browser.py), installed with apt when
# /usr/bin/chromium is missing and this runs as root. Never a browser download of Playwright's own.
# Otherwise it only says so: the browser tests then skip locally, and fail in CI (CI=true).
set -euo pipefail

log() { printf 'chromium-up: %s\n' "$*" >&2; }

if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  log "/usr/bin/chromium is missing and this is not root: the browser tests will skip (and fail in CI)"
  exit 0
fi
log "installing Debian's chromium (and an emoji font, so screenshots show the bot's emoji)"
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -q && apt-get install -y -q chromium fonts-noto-color-emoji; } >&2; then
  log "apt-get could not install chromium"
  [ -n "${CI:-}" ] && exit 1
  log "the browser tests will skip"
fi
