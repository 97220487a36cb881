#!/usr/bin/env bash
# Runs every cargo-fuzz target for FUZZ_SECONDS seconds each (default 20) and fails on the first finding.
# `make fuzz` (long: make fuzz FUZZ_SECONDS=600); `make test` runs a short bounded pass. Stable toolchain:
# `-s none` (no sanitizer; Rust's own checks, debug assertions and overflow checks catch the bugs here).
# Corpora grow in fuzz/corpus/<target> (not committed); fuzz/seeds/<target> are committed starting points;
# a finding is written to fuzz/artifacts/<target>/ — reproduce with `cargo fuzz run -s none --dev <target> <file>`.
# The build, the logs (fuzz-<target>.log) and the summary (fuzz-summary.md) go to the fuzz workspace's target
# folder as cargo resolves it (deploy/local/target-dir.sh): fuzz/target, or CARGO_TARGET_DIR when set.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
seconds=${FUZZ_SECONDS:-20}
# From fuzz/, where cargo fuzz runs cargo: a relative CARGO_TARGET_DIR resolves the same way for both.
out=$(bash ../deploy/local/target-dir.sh fuzz/Cargo.toml)
mkdir -p "$out"
summary=$out/fuzz-summary.md
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo '[fuzz] installing cargo-fuzz 0.13.2 from crates.io'
    cargo install cargo-fuzz --locked --version 0.13.2 --quiet
fi
cargo fuzz build -s none --dev
printf '| target | runs | seconds | coverage (edges) | corpus |\n|---|---:|---:|---:|---:|\n' > "$summary"
for target in $(cargo fuzz list); do
    mkdir -p "corpus/$target" "seeds/$target"
    log=$out/fuzz-$target.log
    dict=()
    [[ $target == gateway_json || $target == rule_condition ]] && dict=(-dict=json.dict)
    if ! cargo fuzz run -s none --dev "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
        "${dict[@]}" >"$log" 2>&1; then
        tail -n 40 "$log"
        echo "[fuzz] $target: FINDING (input saved under fuzz/artifacts/$target/); log: $log" >&2
        exit 1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2)
    corpus=$(find "corpus/$target" -type f | wc -l)
    printf '| %s | %s | %s | %s | %s |\n' "$target" "${runs:-?}" "$seconds" "${cov:-?}" "$corpus" >> "$summary"
done
echo '[fuzz] every target ran without a finding:'
cat "$summary"
echo "[fuzz] logs and this summary: $out/fuzz-*"
