#!/usr/bin/env bash
# Fetches the directory of collectivités (communes.json and epci.json from the data folder of the npm package
# @etalab/decoupage-administratif, pinned) into .cache/decoupage-administratif/data/ (gitignored), the folder
# that ID77_DIRECTORY_DIR points at for the membership service and its tests.
# Idempotent: does nothing when both files of the pinned version are there. Prints the folder on stdout (messages go to stderr), so:
#   export ID77_DIRECTORY_DIR="$(bash deploy/local/fetch-directory.sh)"
set -euo pipefail

PACKAGE=@etalab/decoupage-administratif@6.0.0
FILES=(communes.json epci.json)

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=$ROOT/.cache/decoupage-administratif
DATA=$CACHE/data

log() { printf '[fetch-directory] %s\n' "$*" >&2; }
die() {
    printf '[fetch-directory] ERROR: %s\n' "$*" >&2
    exit 1
}

have_all() {
    local f
    for f in "${FILES[@]}"; do
        [[ -s $DATA/$f ]] || return 1
    done
    # A change of the pinned version fetches again.
    [[ $(cat "$DATA/VERSION" 2>/dev/null) == "$PACKAGE" ]]
}

if have_all; then
    log "$PACKAGE already in $DATA"
    printf '%s\n' "$DATA"
    exit 0
fi

command -v npm >/dev/null 2>&1 ||
    die "npm not found: install Node.js and npm (e.g. apt-get install -y npm) to fetch $PACKAGE"

mkdir -p "$CACHE"
TMP=$(mktemp -d "$CACHE/.fetch.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

log "downloading $PACKAGE with npm pack..."
# npm pack prints the tarball's name as its last line of stdout.
tarball=$(cd "$TMP" && npm pack --silent --no-fund --no-audit "$PACKAGE" </dev/null | tail -n 1) ||
    die "npm pack $PACKAGE failed (is the npm registry reachable?)"
[[ -n $tarball && -s $TMP/$tarball ]] || die "npm pack $PACKAGE produced no tarball"

members=()
for f in "${FILES[@]}"; do
    members+=("package/data/$f")
done
tar -xzf "$TMP/$tarball" -C "$TMP" "${members[@]}" || die "$tarball lacks one of: ${members[*]}"

if command -v python3 >/dev/null 2>&1; then
    for f in "${FILES[@]}"; do
        python3 -c 'import json, sys; json.load(open(sys.argv[1], encoding="utf-8"))' "$TMP/package/data/$f" ||
            die "$f in $tarball is not valid JSON"
    done
fi

# Move the files in place last, each with a rename, so an interrupted run leaves nothing half-written.
mkdir -p "$DATA"
for f in "${FILES[@]}"; do
    mv -f "$TMP/package/data/$f" "$DATA/$f"
done
printf '%s\n' "$PACKAGE" >"$DATA/VERSION"
log "extracted ${FILES[*]} of $PACKAGE into $DATA"
printf '%s\n' "$DATA"
