#!/usr/bin/env bash
# scripts/test.sh — THE test command: sets up a fresh machine and runs every test.
#
#   1. scripts/setup.sh                 Debian packages (idempotent, fast when done)
#   2. tests/interop/venv.sh            Python venv for the interop tests (PD_PYTHON)
#   3. cmake + build in build/          RelWithDebInfo, warnings are errors
#   4. a real Kafka broker              scripts/kafka.sh start, unless one already
#                                       answers on PD_BROKERS; stopped at exit only
#                                       if this script started it
#   5. ctest --test-dir build, then bench/run.sh --smoke
#   6. the same with ASan + UBSan in build-asan/ (skipped with --quick)
#   7. every libFuzzer target, PD_FUZZ_SECONDS (30) each (skipped with --quick)
#
# Usage: scripts/test.sh [--quick]
# Environment: PD_BROKERS (default 127.0.0.1:9092) is passed on to the tests.
# Exits non-zero if anything fails; the last line is "summary: N passed, N failed".
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
JOBS=2
QUICK=0

STARTED_BROKER=0
TOTAL_PASSED=0
TOTAL_FAILED=0
STATUS=0
T_START=$SECONDS
SUMMARY=()

say() { echo "test.sh: $*"; }
die() { echo "test.sh: error: $*" >&2; exit 1; }

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

parse_args() {
  local arg
  for arg in "$@"; do
    case "$arg" in
      --quick) QUICK=1 ;;
      -h | --help) usage ;;
      *) echo "test.sh: unknown argument: $arg" >&2; usage ;;
    esac
  done
}

# Show the tail of a log after a failed step.
show_log() {
  echo "--- last lines of $1 ---" >&2
  tail -n "${2:-80}" "$1" >&2
}

# ---------------------------------------------------------------- the broker

# True when a Kafka broker answers on PD_BROKERS.
broker_answers() {
  kcat -b "$PD_BROKERS" -L -m 5 2>/dev/null | grep -q ' brokers:'
}

stop_broker() {
  if ((STARTED_BROKER)); then
    STARTED_BROKER=0
    bash "$ROOT/scripts/kafka.sh" stop || true
  fi
}

ensure_broker() {
  if broker_answers; then
    say "using the Kafka broker that answers on $PD_BROKERS"
    return 0
  fi
  # Start our own, on the port PD_BROKERS names (one broker on this machine).
  local port
  case "$PD_BROKERS" in
    127.0.0.1:* | localhost:*) port=${PD_BROKERS##*:} ;;
    *) die "no Kafka broker answers on PD_BROKERS=$PD_BROKERS, and it is not one local address to start one on" ;;
  esac
  [[ "$port" =~ ^[0-9]+$ ]] || die "bad port in PD_BROKERS=$PD_BROKERS"
  STARTED_BROKER=1
  PD_KAFKA_PORT=$port bash "$ROOT/scripts/kafka.sh" start || die "could not start Kafka"
}

# ---------------------------------------------------------------- build + test

# build DIR [cmake options...]: configure and build, quietly; 0 on success.
build() {
  local dir=$1
  shift
  local log="$ROOT/$dir/build.log"
  mkdir -p "$ROOT/$dir"
  : >"$log"
  local t0=$SECONDS
  say "building $dir/ ..."
  if ! cmake -S "$ROOT" -B "$ROOT/$dir" -DPD_WERROR=ON "$@" >>"$log" 2>&1; then
    show_log "$log"
    say "$dir: cmake configure FAILED"
    return 1
  fi
  if ! cmake --build "$ROOT/$dir" -j "$JOBS" >>"$log" 2>&1; then
    show_log "$log" 120
    say "$dir: build FAILED"
    return 1
  fi
  say "$dir/ built in $((SECONDS - t0))s"
}

# run_ctest DIR LABEL: run the tests, add their counts to the totals.
run_ctest() {
  local dir=$1 label=$2
  local log="$ROOT/$dir/ctest.log"
  local t0=$SECONDS rc=0
  say "running the tests in $dir/ ($label) ..."
  ctest --test-dir "$ROOT/$dir" --output-on-failure --no-tests=error -j "$JOBS" 2>&1 \
    | tee "$log" || rc=$?

  # ctest's own summary: "NN% tests passed, F tests failed out of T"
  local line failed total passed
  line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n1 || true)
  if [[ -n "$line" ]]; then
    failed=$(sed -E 's/.* ([0-9]+) tests? failed out of.*/\1/' <<<"$line")
    total=$(sed -E 's/.*failed out of ([0-9]+).*/\1/' <<<"$line")
    passed=$((total - failed))
  else
    passed=0
    failed=1   # no tests found, or ctest itself failed
  fi
  # ctest failed without a failed test to show for it (crash, timeout...): one failure.
  if ((rc != 0 && failed == 0)); then failed=1; fi
  TOTAL_PASSED=$((TOTAL_PASSED + passed))
  TOTAL_FAILED=$((TOTAL_FAILED + failed))
  if ((rc == 0 && failed == 0)); then
    SUMMARY+=("$label: $passed tests passed ($((SECONDS - t0))s)")
  else
    SUMMARY+=("$label: $failed of $((passed + failed)) tests FAILED ($((SECONDS - t0))s)")
    STATUS=1
  fi
}

finish() {
  local rc=$?
  stop_broker
  ((rc == 0)) || STATUS=1
  echo
  local s
  for s in "${SUMMARY[@]}"; do say "$s"; done
  local took="$(((SECONDS - T_START) / 60))m$(((SECONDS - T_START) % 60))s"
  if ((STATUS == 0)); then
    say "ALL TESTS PASSED in $took"
  else
    ((TOTAL_FAILED > 0)) || TOTAL_FAILED=1
    say "FAILED after $took"
  fi
  echo "summary: $TOTAL_PASSED passed, $TOTAL_FAILED failed"
  exit "$STATUS"
}

main() {
  parse_args "$@"
  cd "$ROOT"
  trap finish EXIT
  trap 'exit 130' INT TERM

  bash scripts/setup.sh || die "scripts/setup.sh failed"
  PD_PYTHON=$(bash tests/interop/venv.sh) || die "tests/interop/venv.sh failed"
  export PD_PYTHON
  export PD_BROKERS="${PD_BROKERS:-127.0.0.1:${PD_KAFKA_PORT:-9092}}"

  if ! build build -DCMAKE_BUILD_TYPE=RelWithDebInfo; then
    SUMMARY+=("release build: FAILED (see build/build.log)")
    STATUS=1
    exit 1
  fi

  ensure_broker
  run_ctest build "release"
  run_bench_smoke

  if ((QUICK)); then
    SUMMARY+=("sanitizers: skipped (--quick)")
    return 0
  fi

  if ! build build-asan -DPD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-g -O1"; then
    SUMMARY+=("asan build: FAILED (see build-asan/build.log)")
    STATUS=1
    exit 1
  fi
  export ASAN_OPTIONS=detect_leaks=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  run_ctest build-asan "asan+ubsan"
  run_fuzz
}

# run_bench_smoke: the benchmarks at tiny sizes, to check they still run
# (benchmarks are not tests: their figures are not judged here).
run_bench_smoke() {
  local t0=$SECONDS log="$ROOT/build-bench-smoke.log"
  say "benchmarks, smoke mode ..."
  if bash "$ROOT/bench/run.sh" --smoke >"$log" 2>&1; then
    TOTAL_PASSED=$((TOTAL_PASSED + 1))
    SUMMARY+=("bench --smoke: every benchmark ran ($((SECONDS - t0))s)")
  else
    show_log "$log" 40
    TOTAL_FAILED=$((TOTAL_FAILED + 1))
    SUMMARY+=("bench --smoke: FAILED, see build-bench-smoke.log")
    STATUS=1
  fi
}

# run_fuzz: every libFuzzer target for a bounded time under ASan and UBSan,
# starting from the committed corpus (PD_FUZZ_SECONDS each, default 30).
run_fuzz() {
  local t0=$SECONDS log="$ROOT/build-fuzz.log" line passed failed
  say "fuzzing (${PD_FUZZ_SECONDS:-30}s per target) ..."
  if bash "$ROOT/scripts/fuzz.sh" "${PD_FUZZ_SECONDS:-30}" >"$log" 2>&1; then
    STATUS_FUZZ=0
  else
    STATUS_FUZZ=1
    show_log "$log" 60
  fi
  grep -E '^fuzz_[a-z]+:|executions|execs' "$log" | tail -n 8 || true
  line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$log" | tail -n1 || true)
  passed=$(grep -oE '[0-9]+ passed' <<<"${line:-0 passed}" | cut -d' ' -f1)
  failed=$(grep -oE '[0-9]+ failed' <<<"${line:-0 failed, 1 failed}" | tail -n1 | cut -d' ' -f1)
  ((STATUS_FUZZ == 0)) || ((failed > 0)) || failed=1
  TOTAL_PASSED=$((TOTAL_PASSED + passed))
  TOTAL_FAILED=$((TOTAL_FAILED + failed))
  if ((STATUS_FUZZ == 0)); then
    SUMMARY+=("fuzz: $passed targets clean ($((SECONDS - t0))s)")
  else
    SUMMARY+=("fuzz: FAILED, see build-fuzz.log ($((SECONDS - t0))s)")
    STATUS=1
  fi
}

main "$@"
