#!/usr/bin/env bash
# Makes sure the command-line tools a make target needs are installed, installing the missing ones from the
# distribution's packages (apt-get, as root or through passwordless sudo), as ensure-deps.sh does for PostgreSQL:
#   wrk      (make bench-catalogue)  Debian package wrk
#   pgbench  (make bench)            Debian ships pgbench with the server, in postgresql-<major> (not in
#                                    postgresql-client): the major version of the installed psql, else the
#                                    distribution's default (package postgresql). Installing a server package
#                                    creates its cluster (on the next free port when 5432 is taken).
# Usage: bash deploy/local/ensure-tools.sh TOOL...   Idempotent, quick when every tool is there; never prompts.
# Exits non-zero with a message saying what to install when it cannot.
set -euo pipefail

log() { printf '[ensure-tools] %s\n' "$*" >&2; }
die() {
    printf '[ensure-tools] ERROR: %s\n' "$*" >&2
    exit 1
}

# Runs a command as root: directly when we are root, through non-interactive sudo otherwise.
as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        die "need root for: $* (run as root, allow passwordless sudo, or install it by hand)"
    fi
}

APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install $* by hand"
    log "installing $* from the distribution's packages (apt-get)..."
    if ((!APT_UPDATED)); then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || die "apt-get update failed"
        APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" </dev/null >&2 ||
        die "apt-get install $* failed"
}

# True when the tool runs (not merely on the PATH: Debian's /usr/bin/pgbench is a wrapper of
# postgresql-client-common that fails when no postgresql-<major> ships the real pgbench).
runs() {
    "$@" >/dev/null 2>&1 </dev/null
}

ensure_wrk() {
    command -v wrk >/dev/null 2>&1 && return 0
    apt_install wrk
    command -v wrk >/dev/null 2>&1 || die "wrk installed but not on the PATH"
}

ensure_pgbench() {
    runs pgbench --version && return 0
    local major package=postgresql
    major=$(psql --version 2>/dev/null | sed -n 's/^psql (PostgreSQL) \([0-9]*\).*/\1/p' || true)
    if [[ -n $major ]] && apt-cache show "postgresql-$major" >/dev/null 2>&1; then
        package=postgresql-$major
    fi
    apt_install "$package"
    runs pgbench --version || die "installed $package but pgbench still does not run"
}

(($#)) || die "usage: $0 TOOL... (wrk, pgbench)"
for tool in "$@"; do
    case $tool in
    wrk) ensure_wrk ;;
    pgbench) ensure_pgbench ;;
    *) die "unknown tool $tool (wrk, pgbench)" ;;
    esac
    log "$tool: $(command -v "$tool")"
done
