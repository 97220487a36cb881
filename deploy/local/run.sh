#!/usr/bin/env bash
# `make run`: the whole platform on this machine, in the foreground.
#   1. makes sure PostgreSQL and NATS (JetStream) answer (ensure-deps.sh);
#   2. fetches the directory of collectivités (fetch-directory.sh) for membership's import;
#   3. builds every binary (cargo build --bins, the dev profile);
#   4. starts the five gRPC services and the gateway from target/debug, logs in .run/logs/<name>.log, and waits
#      until each is ready (gRPC port accepts TCP; gateway GET /healthz answers 200);
#   5. starts one demo referral consumer per provider of the demo catalogue (--rule accept-all);
#   6. prints the URL and a walk-through, then waits. Ctrl-C or SIGTERM stops every child (SIGTERM, then SIGKILL
#      after 10 s) and exits 0.
#
# Environment (all optional; everything else, e.g. ID77_PG_URL, ID77_NATS_URL, ID77_LOG, is passed through):
#   ID77_RUN_NO_BUILD=1        skip the cargo build (use the binaries already in target/debug)
#   ID77_RUN_READY_TIMEOUT=120 seconds to wait for each process to be ready
#   ID77_RUN_NO_CONSUMERS=1    do not start the demo referral consumers
#   ID77_DIRECTORY_DIR         directory data folder (default: the one fetch-directory.sh fills)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

TARGET_DIR=${CARGO_TARGET_DIR:-target}
[[ $TARGET_DIR == /* ]] || TARGET_DIR=$ROOT/$TARGET_DIR
BIN_DIR=$TARGET_DIR/debug
LOG_DIR=$ROOT/.run/logs
READY_TIMEOUT=${ID77_RUN_READY_TIMEOUT:-120}
STOP_GRACE=10

# name:port of the gRPC services, in the order they are started.
GRPC_SERVICES=(membership:50051 catalogue:50052 requests:50053 routing:50054 billing:50055)
HTTP_ADDR=127.0.0.1:8080
GATEWAY_URL=http://$HTTP_ADDR
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

stop_children() {
    ((STOPPING)) && return 0
    STOPPING=1
    trap '' INT TERM # a second Ctrl-C does not cut the clean stop short (it is bounded anyway)
    local alive=() pid
    mapfile -t alive < <(alive_pids)
    ((${#alive[@]})) || return 0
    log "stopping ${#alive[@]} process(es) (SIGTERM; SIGKILL after ${STOP_GRACE}s)..."
    # Reverse start order: consumers and the gateway first, then the services.
    for ((i = ${#alive[@]} - 1; i >= 0; i--)); do
        kill -TERM "${alive[i]}" 2>/dev/null || true
    done
    local deadline=$((SECONDS + STOP_GRACE))
    while ((SECONDS < deadline)); do
        mapfile -t alive < <(alive_pids)
        ((${#alive[@]})) || break
        sleep 0.2
    done
    mapfile -t alive < <(alive_pids)
    for pid in "${alive[@]}"; do
        warn "$(name_of "$pid") did not stop within ${STOP_GRACE}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    done
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
for entry in "${GRPC_SERVICES[@]}" gateway:0; do
    bin=$BIN_DIR/id77-${entry%%:*}
    [[ -x $bin ]] || missing+=("${bin#"$ROOT"/}")
done
((${#missing[@]} == 0)) || die "missing binaries: ${missing[*]} (is every service a member of the workspace?)"

# Fail early, and clearly, if a port is taken (e.g. by a `make run` still running elsewhere): the readiness
# checks would otherwise succeed against the other process.
for entry in "${GRPC_SERVICES[@]}" "gateway:${HTTP_ADDR##*:}"; do
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

# ---------------------------------------------------------------------------------------------------------------
# 4: services and gateway
# ---------------------------------------------------------------------------------------------------------------

mkdir -p "$LOG_DIR"
log "directory data: $ID77_DIRECTORY_DIR"

for entry in "${GRPC_SERVICES[@]}"; do
    name=${entry%%:*}
    spawn "$name" env ID77_GRPC_ADDR="127.0.0.1:${entry##*:}" "$BIN_DIR/id77-$name"
done
for i in "${!GRPC_SERVICES[@]}"; do
    entry=${GRPC_SERVICES[i]}
    wait_ready "${entry%%:*}" "${PIDS[i]}" "gRPC on 127.0.0.1:${entry##*:}" tcp_open 127.0.0.1 "${entry##*:}"
done

gateway_env=(ID77_HTTP_ADDR="$HTTP_ADDR" ID77_DEV_IDENTITY=1)
for entry in "${GRPC_SERVICES[@]}"; do
    name=${entry%%:*}
    gateway_env+=("ID77_${name^^}_URL=http://127.0.0.1:${entry##*:}")
done
spawn gateway env "${gateway_env[@]}" "$BIN_DIR/id77-gateway"
wait_ready gateway "${PIDS[-1]}" "GET $GATEWAY_URL/healthz" http_ok "$GATEWAY_URL/healthz"

# ---------------------------------------------------------------------------------------------------------------
# 5: demo referral consumers, one per provider of the demo catalogue
# ---------------------------------------------------------------------------------------------------------------

start_consumers() {
    local bin=$BIN_DIR/id77-referral-consumer
    if [[ ${ID77_RUN_NO_CONSUMERS:-0} == 1 ]]; then
        log "ID77_RUN_NO_CONSUMERS=1: no demo referral consumers"
        return
    fi
    if [[ ! -f $CATALOGUE_SEED ]]; then
        log "no $CATALOGUE_SEED: no demo referral consumers"
        return
    fi
    if [[ ! -x $bin ]]; then
        warn "${bin#"$ROOT"/} not built: no demo referral consumers"
        return
    fi
    local listing codes=() code
    listing=$(python3 - "$CATALOGUE_SEED" <<'PY'
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
    ) || {
        warn "could not read provider codes from $CATALOGUE_SEED: no demo referral consumers"
        return
    }
    [[ -z $listing ]] || mapfile -t codes <<<"$listing"
    if ((${#codes[@]} == 0)); then
        log "no providers with a code in $CATALOGUE_SEED: no demo referral consumers"
        return
    fi
    for code in "${codes[@]}"; do
        # A provider code is a NATS subject token (and here a file name): [a-z0-9-], at most 64 characters.
        if [[ ! $code =~ ^[a-z0-9-]{1,64}$ ]]; then
            warn "skipping provider code '$code' (not [a-z0-9-]{1,64})"
            continue
        fi
        spawn "referral-consumer-$code" "$bin" --provider "$code" --rule accept-all
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
# 6: what to do next, then wait
# ---------------------------------------------------------------------------------------------------------------

print_walkthrough() {
    if [[ -f $WALKTHROUGH ]]; then
        cat "$WALKTHROUGH"
        return
    fi
    cat <<TEXT
A first walk-through with curl (ID77_DEV_IDENTITY=1: the gateway honours the header
'X-Id77-Dev-Identity: coordinator | operator | member:<id> | provider:<code>'; see /openapi.json):

  # find a commune in the directory
  curl -s '$GATEWAY_URL/v1/collectivities?q=Meaux'

  # apply for membership with its SIREN
  curl -s -X POST '$GATEWAY_URL/v1/memberships' \\
       -H 'Content-Type: application/json' -H 'Idempotency-Key: demo-1' \\
       -d '{"siren": "<SIREN from above>", "contact_name": "Jeanne Martin", "contact_email": "jeanne.martin@example.org"}'

  # the catalogue
  curl -s '$GATEWAY_URL/v1/offers'
TEXT
}

cat <<TEXT

==========================================================================================
 ID 77 platform is running
   API:      $GATEWAY_URL
   OpenAPI:  $GATEWAY_URL/openapi.json
   Logs:     .run/logs/
==========================================================================================

TEXT
print_walkthrough
printf '\nPress Ctrl-C to stop.\n\n'

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
