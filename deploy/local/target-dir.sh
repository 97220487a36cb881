#!/usr/bin/env bash
# Prints the absolute path of the folder cargo builds into, as cargo itself resolves it: CARGO_TARGET_DIR (or
# CARGO_BUILD_TARGET_DIR, or build.target-dir in a .cargo/config.toml) when set, else <workspace>/target. The one
# way the scripts and the Makefile find cargo's output: never assume ./target (CARGO_TARGET_DIR often points
# outside the clone, to share one build folder between checkouts; CI builds that way, see .ci/run).
#
#   bash deploy/local/target-dir.sh                      # the main workspace's
#   bash deploy/local/target-dir.sh fuzz/Cargo.toml      # another workspace's (cargo-fuzz's, under fuzz/)
#
# A relative manifest path is relative to the repository root. Run it from the folder the cargo commands run in:
# cargo resolves a relative CARGO_TARGET_DIR, and finds .cargo/config.toml, from its working directory. Asks
# `cargo metadata --no-deps` (no build, no network, no build-folder lock); falls back to CARGO_TARGET_DIR, then
# <workspace>/target, when cargo cannot answer.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
manifest=${1:-Cargo.toml}
[[ $manifest == /* ]] || manifest=$ROOT/$manifest
[[ -f $manifest ]] || {
    printf '[target-dir] ERROR: no %s\n' "$manifest" >&2
    exit 1
}

dir=
if metadata=$("${CARGO:-cargo}" metadata --format-version 1 --no-deps --offline \
    --manifest-path "$manifest" 2>/dev/null </dev/null); then
    dir=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])' <<<"$metadata" \
        2>/dev/null || sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p' <<<"$metadata")
fi
if [[ -z $dir ]]; then
    dir=${CARGO_TARGET_DIR:-$(dirname "$manifest")/target}
    [[ $dir == /* ]] || dir=$PWD/$dir
fi
printf '%s\n' "$dir"
