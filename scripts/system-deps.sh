#!/usr/bin/env bash
# Installs the system packages the test suite needs (PostgreSQL server, Redis, Chromium, DejaVu fonts)
# when they are missing. As root it uses apt-get; otherwise it says what to install and fails.
set -euo pipefail

missing=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
[ -x /usr/bin/chromium ] || missing+=(chromium)
# The job queue's tests (RQ) run against a real Redis they start on 127.0.0.1.
command -v redis-server >/dev/null || missing+=(redis-server)
# The Unicode font embedded in PDF receipts (names in Hebrew, Arabic, ...).
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
command -v wrk >/dev/null || [ "${WITH_BENCH_TOOLS:-0}" = 0 ] || missing+=(wrk)
command -v sqlite3 >/dev/null || [ "${WITH_BENCH_TOOLS:-0}" = 0 ] || missing+=(sqlite3)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "Missing system packages: ${missing[*]}. Install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "Installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
