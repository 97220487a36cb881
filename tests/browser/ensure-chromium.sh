#!/usr/bin/env bash
# Makes sure Debian's Chromium is installed for the browser tests (tests/browser/run.mjs drives it with
# playwright-core; no browser is downloaded by npm). Installs the `chromium` package with apt-get when missing.
# Prints the path of the browser. Never prompts.
set -euo pipefail
BIN=${CHROMIUM:-/usr/bin/chromium}
if [[ -x $BIN ]]; then
    printf '%s\n' "$BIN"
    exit 0
fi
run_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        printf '[ensure-chromium] ERROR: %s is missing and installing it needs root: apt-get install chromium\n' "$BIN" >&2
        exit 1
    fi
}
printf '[ensure-chromium] installing Debian package chromium...\n' >&2
run_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
run_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >&2
[[ -x $BIN ]] || { printf '[ensure-chromium] ERROR: chromium installed but %s not found\n' "$BIN" >&2; exit 1; }
printf '%s\n' "$BIN"
