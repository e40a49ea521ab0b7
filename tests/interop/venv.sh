#!/usr/bin/env bash
# tests/interop/venv.sh — the Python environment of the interoperability tests:
# an independent Kafka client (confluent-kafka) and an independent Avro
# implementation (fastavro), in a virtual environment outside the repository:
#   ${XDG_CACHE_HOME:-~/.cache}/postdeploy/venv
# Creates it when missing or broken (idempotent, quiet), then prints the path
# of its python on stdout — and nothing else there:
#   PY=$(tests/interop/venv.sh) && "$PY" tests/interop/some_test.py
set -euo pipefail

VENV="${XDG_CACHE_HOME:-$HOME/.cache}/postdeploy/venv"
PY="$VENV/bin/python"
PACKAGES=("confluent-kafka>=2.0" "fastavro>=1.9")
CHECK='import confluent_kafka, fastavro'
LOG="$(dirname "$VENV")/venv.log"

die() {
  echo "venv.sh: $*" >&2
  if [[ -s "$LOG" ]]; then
    echo "--- last lines of $LOG ---" >&2
    tail -n 30 "$LOG" >&2
  fi
  exit 1
}

ready() {
  [[ -x "$PY" ]] && "$PY" -c "$CHECK" >/dev/null 2>&1
}

create() {
  command -v python3 >/dev/null 2>&1 || die "python3 not found (run scripts/setup.sh)"
  mkdir -p "$(dirname "$VENV")"
  : >"$LOG"
  rm -rf "$VENV"
  echo "venv.sh: creating $VENV (confluent-kafka, fastavro from PyPI) ..." >&2
  python3 -m venv "$VENV" >>"$LOG" 2>&1 \
    || die "python3 -m venv failed (Debian: apt-get install python3-venv; scripts/setup.sh does)"
  "$PY" -m pip install -q --disable-pip-version-check --no-input "${PACKAGES[@]}" \
    </dev/null >>"$LOG" 2>&1 || die "pip install ${PACKAGES[*]} failed"
  ready || die "the new venv cannot import confluent_kafka and fastavro"
}

main() {
  # One creator at a time: parallel tests may all call this script.
  mkdir -p "$(dirname "$VENV")"
  exec 9>"$(dirname "$VENV")/.venv.lock"
  flock -w 600 9 || die "timed out waiting for another venv.sh"
  ready || create
  echo "$PY"
}

main "$@"
