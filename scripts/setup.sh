#!/usr/bin/env bash
# scripts/setup.sh — install what a fresh Debian 12 machine needs for
# postdeploy. Two sets:
#
#   (default)  everything to build and test it (scripts/test.sh, CI): the C
#              toolchain and -dev libraries, cmocka, kcat and sqlite3, a Java
#              >= 17 runtime and Maven (for the real Kafka broker that
#              scripts/kafka.sh fetches), Python's venv (tests/interop/venv.sh),
#              clang's libFuzzer runtime and valgrind; for the package test
#              (tests/integration/test_package.sh) systemd-analyze, man and
#              groff, col; the linters of the CI recipes (yamllint,
#              shellcheck; actionlint through Go, where Go is installed);
#              headless Chromium (the status page's test); Prometheus
#              (promtool and a real server scrape the reactor in tests).
#   --demo     only what building and running the programs needs (the C
#              toolchain, cmake, pkg-config and the libraries' -dev
#              packages): what scripts/demo.sh uses, with its embedded broker.
#
# Idempotent: it installs only what is missing, and runs `apt-get update`
# only when something is. Non-interactive, quiet: the details go to a log
# file, one summary line goes to stdout; on failure the log's tail is shown.
#
# Usage: scripts/setup.sh [--demo] [--list]    (as root, or with sudo)
#   --list   print the requirements of the set, one a line, and install
#            nothing
set -euo pipefail

CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/postdeploy"
LOG="$CACHE_DIR/setup.log"
export DEBIAN_FRONTEND=noninteractive

# Debian packages that building and running the programs needs.
BUILD_PACKAGES=(
  build-essential cmake pkg-config
  librdkafka-dev libavro-dev libsqlite3-dev libjansson-dev libssl-dev
  libmicrohttpd-dev
)
# And what the tests, the fuzzers and the real broker's download add.
TEST_PACKAGES=(
  libcmocka-dev
  kcat sqlite3 curl ca-certificates
  prometheus
  clang libclang-rt-14-dev valgrind
  systemd man-db groff-base bsdextrautils
  yamllint python3-yaml shellcheck clang-format
  chromium
)
# GitHub Actions' linter is a Go program, not a Debian package: where Go is
# installed, the full set adds it from the Go module proxy (a pinned
# version, into $(go env GOPATH)/bin, where tests/check_ci_recipes.sh
# looks). Without Go the recipes are linted by yamllint and shellcheck only.
ACTIONLINT_MODULE=github.com/rhysd/actionlint/cmd/actionlint@v1.7.12

log() { printf '%s\n' "$*" >>"$LOG"; }
die() {
  echo "setup.sh: $*" >&2
  if [[ -s "$LOG" ]]; then
    echo "--- last lines of $LOG ---" >&2
    tail -n 30 "$LOG" >&2
  fi
  exit 1
}

# Root runs apt directly; anyone else goes through sudo (if there is one).
as_root() {
  if [[ $EUID -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -n DEBIAN_FRONTEND=noninteractive "$@"
  else
    die "need root (or sudo) to run: $*"
  fi
}

# True when the Debian package is installed (any architecture).
installed() {
  dpkg-query -W -f='${db:Status-Status}\n' "$1" 2>/dev/null | grep -qx installed
}

# True when `java` is a runtime of version >= 17 (Kafka 4's broker needs it).
java_ok() {
  command -v java >/dev/null 2>&1 || return 1
  local v
  v=$(java -version 2>&1 | sed -n 's/.* version "\([0-9]*\).*/\1/p' | head -n1)
  [[ -n "$v" && "$v" -ge 17 ]]
}

# True when the machine's python3 can make a virtual environment with pip
# (Debian ships ensurepip in python3-venv; pyenv/other builds have it built in).
venv_ok() {
  command -v python3 >/dev/null 2>&1 && python3 -c 'import venv, ensurepip' >/dev/null 2>&1
}

actionlint_ok() {
  command -v actionlint >/dev/null 2>&1 || [[ -x "$(go env GOPATH)/bin/actionlint" ]]
}

# Installs actionlint if Go is here and it is not; says nothing otherwise.
install_actionlint() {
  command -v go >/dev/null 2>&1 || return 0
  actionlint_ok && return 0
  log "go install $ACTIONLINT_MODULE"
  go install "$ACTIONLINT_MODULE" </dev/null >>"$LOG" 2>&1 \
    || die "go install $ACTIONLINT_MODULE failed"
  echo "setup.sh: installed actionlint with Go into $(go env GOPATH)/bin (log: $LOG)"
}

main() {
  local demo=0 list=0 a
  for a in "$@"; do
    case $a in
      --demo) demo=1 ;;
      --list) list=1 ;;
      *) echo "setup.sh: unknown option '$a' (usage: scripts/setup.sh [--demo] [--list])" >&2; exit 2 ;;
    esac
  done
  if ((list)); then
    printf '%s\n' "${BUILD_PACKAGES[@]}"
    ((demo)) || printf '%s\n' "${TEST_PACKAGES[@]}" default-jre-headless maven python3-venv
    return 0
  fi

  mkdir -p "$CACHE_DIR"
  : >"$LOG"
  log "setup.sh $* $(date -Is)"

  command -v dpkg-query >/dev/null 2>&1 || die "this script expects Debian (dpkg/apt)"

  local wanted=("${BUILD_PACKAGES[@]}")
  if ((!demo)); then
    wanted+=("${TEST_PACKAGES[@]}")
    java_ok || wanted+=(default-jre-headless)
    command -v mvn >/dev/null 2>&1 || wanted+=(maven)
    if ! venv_ok; then
      command -v python3 >/dev/null 2>&1 || wanted+=(python3)
      wanted+=(python3-venv)
    fi
  fi

  local missing=() p
  for p in "${wanted[@]}"; do
    installed "$p" || missing+=("$p")
  done

  if ((${#missing[@]} == 0)); then
    echo "setup.sh: all ${#wanted[@]} requirements already present (log: $LOG)"
    ((demo)) || install_actionlint
    return 0
  fi

  log "missing: ${missing[*]}"
  # Wait for another apt/dpkg run rather than failing on its lock.
  local apt_opts=(-q -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confold)
  as_root apt-get "${apt_opts[@]}" update </dev/null >>"$LOG" 2>&1 \
    || die "apt-get update failed"
  as_root apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}" \
    </dev/null >>"$LOG" 2>&1 || die "apt-get install failed (${missing[*]})"

  # Check what the packages were installed for.
  if ((!demo)); then
    java_ok || die "a Java >= 17 runtime is still missing after the install"
    command -v mvn >/dev/null 2>&1 || die "mvn is still missing after the install"
    venv_ok || die "python3 -m venv still does not work after the install"
    install_actionlint
  fi

  echo "setup.sh: installed ${#missing[@]} package(s): ${missing[*]} (log: $LOG)"
}

main "$@"
