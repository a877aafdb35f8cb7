#!/usr/bin/env bash
# Debian's Prometheus for the monitoring end-to-end test (tests/e2e/test_monitoring_e2e.py), installed with
# apt when `prometheus` is missing and this runs as root. The test starts its own server on loopback
# (generated config, 1 s scrapes, storage in a temporary directory); the package's service is not used.
# Otherwise it only says so: the test then skips locally, and fails in CI (CI=true).
set -euo pipefail

log() { printf 'prometheus-up: %s\n' "$*" >&2; }

if command -v prometheus >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  log "prometheus is missing and this is not root: the monitoring end-to-end test will skip (and fail in CI)"
  exit 0
fi
log "installing Debian's prometheus"
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -q && apt-get install -y -q --no-install-recommends prometheus; } >&2; then
  log "apt-get could not install prometheus"
  [ -n "${CI:-}" ] && exit 1
  log "the monitoring end-to-end test will skip"
fi
# The package starts its own service where an init system runs; the tests never use it.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  systemctl stop prometheus >/dev/null 2>&1 || true
fi
exit 0
