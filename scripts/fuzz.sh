#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 60) and prints, per target,
# the executions libFuzzer ran and the crashes it found. Exits non-zero on any crash.
#   scripts/fuzz.sh [seconds-per-target]
# cargo-fuzz needs nightly flags (-Z sanitizer options); RUSTC_BOOTSTRAP=1 lets the stable
# toolchain take them. Crashing inputs land in fuzz/artifacts/<target>/, the corpus grows in
# fuzz/corpus/<target>/ (seeded from fuzz/seeds/<target>/).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-60}"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
# Release with debug assertions (overflow checks), no sanitizer: the code under test forbids
# unsafe, and the throughput matters more than ASan's checks of the C underneath.
FLAGS=(-O -a -s none)
cargo fuzz build "${FLAGS[@]}"
TARGETS=$(cargo fuzz list)
total=0
crashed=0
printf '%-18s %14s %8s %8s\n' target executions exec/s crashes
for t in $TARGETS; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t" "fuzz/seeds/$t"
  log="fuzz/artifacts/$t.log"
  set +e
  cargo fuzz run "${FLAGS[@]}" "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
    -max_total_time="$SECS" -print_final_stats=1 -max_len=65536 -timeout=10 \
    -rss_limit_mb=2048 >"$log" 2>&1
  rc=$?
  set -e
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log" | tail -1)
  rate=$(awk '/stat::average_exec_per_sec/ {print $2}' "$log" | tail -1)
  found=$(find "fuzz/artifacts/$t" -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' -o -name 'leak-*' \) | wc -l)
  if [ "$rc" -ne 0 ] && [ "$found" -eq 0 ]; then found="rc=$rc"; fi
  printf '%-18s %14s %8s %8s\n' "$t" "${execs:-0}" "${rate:-0}" "$found"
  total=$((total + ${execs:-0}))
  if [ "$found" != 0 ]; then crashed=1; fi
done
printf '%-18s %14s\n' total "$total"
if [ "$crashed" -ne 0 ]; then
  echo "fuzz: crashes found; see fuzz/artifacts/ (logs in fuzz/artifacts/<target>.log)" >&2
  exit 1
fi
