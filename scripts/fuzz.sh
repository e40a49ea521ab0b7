#!/usr/bin/env bash
# scripts/fuzz.sh — builds the libFuzzer targets of tests/fuzz with clang,
# ASan and UBSan in build-fuzz/, and runs each for a bounded time.
#
#   1. cmake -DPD_FUZZ=ON -DPD_TESTS=OFF in build-fuzz/ with CC=clang
#   2. the committed seeds (tests/fuzz/corpus/TARGET) are copied into
#      build-fuzz/corpus/TARGET, which libFuzzer then grows; the repository
#      is never written to, and the grown corpus is kept for the next run
#      (rm -rf build-fuzz/corpus to start over)
#   3. each target runs SECONDS_PER_TARGET seconds with its dictionary
#      (tests/fuzz/dict/TARGET.dict) if there is one; 0 runs every seed once
#      and does no fuzzing (a quick regression check)
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET [TARGET...]]
#   SECONDS_PER_TARGET  default 60
#   TARGET              fuzz_event, fuzz_avro, ... (default: every target)
# Needs clang and libclang-rt-14-dev (scripts/setup.sh installs both).
#
# A crash, a leak, undefined behaviour, a broken invariant, a 10-second
# input or more than 2 GiB of memory fails the target: its input is left in
# build-fuzz/artifacts/TARGET/, with its path and a hex dump printed; replay
# it with `build-fuzz/TARGET FILE`. Exits non-zero if any target failed; the
# last line is "fuzz: N passed, N failed".
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build-fuzz
SECS=60
TARGETS=()
PASSED=0
FAILED=0
REPORT=()

say() { echo "fuzz.sh: $*"; }
die() { echo "fuzz.sh: error: $*" >&2; exit 2; }

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

parse_args() {
  case "${1:-}" in
    -h | --help) usage ;;
  esac
  if (($# > 0)); then
    [[ "$1" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: not a number of seconds: $1" >&2; usage; }
    SECS=$1
    shift
  fi
  TARGETS=("$@")
  if ((${#TARGETS[@]} == 0)); then
    local src
    for src in "$ROOT"/tests/fuzz/fuzz_*.c; do
      TARGETS+=("$(basename "$src" .c)")
    done
  fi
  local t
  for t in "${TARGETS[@]}"; do
    [[ -f "$ROOT/tests/fuzz/$t.c" ]] || die "no target $t (tests/fuzz/$t.c)"
  done
}

build() {
  command -v clang >/dev/null 2>&1 || die "clang not found: run scripts/setup.sh"
  mkdir -p "$BUILD"
  local log=$BUILD/build.log
  say "building ${TARGETS[*]} in build-fuzz/ (log: build-fuzz/build.log)"
  # CMAKE_C_COMPILER too: a build-fuzz/ configured with another compiler
  # is then reconfigured rather than kept.
  if ! CC=clang cmake -S "$ROOT" -B "$BUILD" -DCMAKE_C_COMPILER=clang \
      -DPD_FUZZ=ON -DPD_TESTS=OFF >"$log" 2>&1 ||
    ! cmake --build "$BUILD" -j "$(nproc)" --target "${TARGETS[@]}" >>"$log" 2>&1; then
    echo "--- last lines of $log ---" >&2
    tail -n 40 "$log" >&2
    die "the build failed"
  fi
}

# The value of libFuzzer's final "stat::NAME: VALUE" line in log, or "?".
stat_of() {
  local v
  v=$(sed -n "s/^stat::$2: *//p" "$1" | tail -n 1)
  echo "${v:-?}"
}

# Runs target $1; appends its line to REPORT.
run_target() {
  local t=$1
  local corpus=$BUILD/corpus/$t artifacts=$BUILD/artifacts/$t
  local log=$BUILD/logs/$t.log dict=$ROOT/tests/fuzz/dict/$t.dict
  # 8 KiB inputs reach the limits at 4 KiB (output_tail, a config line)
  # that libFuzzer's default -max_len of 4096 stops just short of.
  local args=(-timeout=10 -rss_limit_mb=2048 -max_len=8192
              -print_final_stats=1 "-artifact_prefix=$artifacts/")
  local rc=0 budget

  mkdir -p "$corpus" "$artifacts" "$BUILD/logs"
  cp "$ROOT/tests/fuzz/corpus/$t/"* "$corpus/" 2>/dev/null || true
  [[ -f "$dict" ]] && args+=("-dict=$dict")
  if ((SECS == 0)); then
    args+=(-runs=0)
  else
    args+=("-max_total_time=$SECS")
  fi
  # libFuzzer stops itself; this only catches a run that hangs outside an
  # input (at start-up or exit), which -timeout cannot see.
  budget=$((SECS + 300))

  say "$t: ${SECS}s (log: build-fuzz/logs/$t.log)"
  timeout --signal=KILL "$budget" "$BUILD/$t" "${args[@]}" "$corpus" \
    >"$log" 2>&1 || rc=$?

  local execs cov line last
  # The last status line, e.g. "#1234 DONE cov: 361 ft: 900 corp: 322/28Kb";
  # its number stands in for the final stats a crash does not print.
  last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
  cov=$(sed -n 's/.*\(cov: [0-9]* ft: [0-9]* corp: [^ ]*\).*/\1/p' <<<"$last")
  execs=$(stat_of "$log" number_of_executed_units)
  [[ "$execs" == "?" && "$last" =~ ^#([0-9]+) ]] && execs=${BASH_REMATCH[1]}
  line=$(printf '%-12s %10s execs in %ss, %s, peak rss %s MB' "$t" "$execs" \
    "$SECS" "${cov:-cov: ?}" "$(stat_of "$log" peak_rss_mb)")

  if ((rc == 0)); then
    PASSED=$((PASSED + 1))
    REPORT+=("ok     $line")
    return 0
  fi

  FAILED=$((FAILED + 1))
  REPORT+=("FAILED $line (exit $rc)")
  echo "--- $t failed (exit $rc); the end of its log: ---" >&2
  # The sanitizer's or the invariant's report, without the status lines.
  grep -vE '^#[0-9]+ ' "$log" | tail -n 60 >&2
  local input
  input=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
  if [[ -n "$input" && -f "$input" ]]; then
    echo "--- the input ($(wc -c <"$input") bytes): $input" >&2
    head -c 1024 "$input" | od -A x -t x1z -v >&2
    echo "--- replay: $BUILD/$t $input" >&2
  elif ((rc == 124 || rc == 137)); then
    echo "--- $t was killed after ${budget}s without an input to blame" >&2
  fi
}

main() {
  parse_args "$@"
  build
  # Symbolized stack traces if llvm-symbolizer is around (Debian's llvm-14
  # package); without it the reports still fail the run, with raw addresses.
  local sym
  for sym in llvm-symbolizer llvm-symbolizer-14 /usr/lib/llvm-14/bin/llvm-symbolizer; do
    if command -v "$sym" >/dev/null 2>&1; then
      export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-$(command -v "$sym")}
      break
    fi
  done
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

  local t
  for t in "${TARGETS[@]}"; do
    run_target "$t"
  done

  echo
  printf '%s\n' "${REPORT[@]}"
  echo "fuzz: $PASSED passed, $FAILED failed"
  ((FAILED == 0))
}

main "$@"
