# lib.sh - shared by the integration tests: a private world (topics, group,
# state, markers) on the real broker, the reactor's life cycle, and
# assertions that say what was expected.
#
# Source it; it sets: PD_BIN (the build's binaries), T (a temp dir removed at
# exit), PD_BROKERS, and RUN_ID (makes topic and group names unique).
set -euo pipefail

: "${PD_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${PD_BUILD_DIR:=$PD_SOURCE_DIR/build}"
: "${PD_BROKERS:=127.0.0.1:9092}"
PD_BIN=$PD_BUILD_DIR
T=$(mktemp -d)
RUN_ID=$(date +%s)-$$-$RANDOM
PD_REACTOR_PID=
PD_FAILS=0
PD_CHECKS=0

pd_cleanup() {
	# Background jobs are subshells that inherit this trap; only the test's
	# own shell may clean up.
	[ "$BASHPID" = "$$" ] || return 0
	if [ -n "$PD_REACTOR_PID" ] && kill -0 "$PD_REACTOR_PID" 2>/dev/null; then
		kill -KILL "$PD_REACTOR_PID" 2>/dev/null || true
	fi
	if [ "${PD_KEEP:-}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap pd_cleanup EXIT

pd_die() { echo "FATAL: $*" >&2; exit 1; }

# The real broker must answer: a missing broker fails the test loudly.
pd_require_broker() {
	command -v kcat >/dev/null || pd_die "kcat is not installed (run scripts/setup.sh)"
	kcat -b "$PD_BROKERS" -L -m 10 >/dev/null 2>&1 ||
		pd_die "no Kafka broker answers on $PD_BROKERS (start one: scripts/kafka.sh start)"
}

pd_check() { # pd_check "what" command...
	local what=$1; shift
	PD_CHECKS=$((PD_CHECKS + 1))
	if "$@"; then echo "ok   - $what"; else echo "FAIL - $what"; PD_FAILS=$((PD_FAILS + 1)); fi
}

pd_eq() { # pd_eq "what" expected actual
	PD_CHECKS=$((PD_CHECKS + 1))
	if [ "$2" = "$3" ]; then echo "ok   - $1"; else
		echo "FAIL - $1: expected '$2', got '$3'"; PD_FAILS=$((PD_FAILS + 1)); fi
}

pd_done() {
	local passed=$((PD_CHECKS - PD_FAILS))
	echo "$passed passed, $PD_FAILS failed"
	if [ -n "$PD_REACTOR_PID" ] && [ "$PD_FAILS" -gt 0 ]; then
		echo "--- reactor log ---"; tail -n 60 "$T/reactor.log" || true
	fi
	[ "$PD_FAILS" -eq 0 ]
}

# Lines in a marker file (0 if it does not exist).
pd_lines() { if [ -f "$1" ]; then wc -l <"$1" | tr -d ' '; else echo 0; fi; }

# Writes $T/postdeploy.ini: unique topics and group; the [action] sections
# come from stdin; PD_REACTOR_LINES (lines, may be empty) go under
# [reactor] (e.g. "shared_group = true").
pd_config() {
	mkdir -p "$T/markers"
	cat >"$T/postdeploy.ini" <<INI
[kafka]
bootstrap.servers = $PD_BROKERS
# A reactor killed by a test is noticed by the group after this long (the
# broker's minimum), not after the default 45 s.
session.timeout.ms = 6000
[reactor]
group.id = pdtest-$RUN_ID
state = $T/state/state.db
log_dir = $T/logs
default_tenant = default
workers = 4
shutdown_grace = 10s
${PD_REACTOR_LINES:-}
[topics]
events = pdtest.$RUN_ID.events
results = pdtest.$RUN_ID.results
dlq = pdtest.$RUN_ID.dlq
partitions = 3
[cli]
tenants = acme, globex
INI
	cat >>"$T/postdeploy.ini"
}

# A test action: appends "$name $tenant $release" to markers/<tenant>.<name>,
# prints something, and exits with the status given.
pd_action_script() {
	cat >"$T/act.sh" <<'SH'
#!/bin/sh
# usage: act.sh NAME TENANT EXIT_STATUS
echo "$1 $2 $POSTDEPLOY_RELEASE" >>"$MARKERS/$2.$1"
echo "action $1 for $2 (event $POSTDEPLOY_EVENT_ID)"
if [ "$3" != 0 ]; then echo "something went wrong in $1" >&2; fi
exit "$3"
SH
	chmod +x "$T/act.sh"
}

# PD_REACTOR_WRAPPER (e.g. "valgrind --error-exitcode=99") runs the reactor
# under a tool; its exit status then reaches pd_reactor_stop.
pd_reactor_start() {
	# shellcheck disable=SC2086
	MARKERS=$T/markers PD_SUPERVISOR_EXE=$PD_BIN/postdeploy-reactor \
		${PD_REACTOR_WRAPPER:-} "$PD_BIN/postdeploy-reactor" -c "$T/postdeploy.ini" "$@" \
		>>"$T/reactor.log" 2>&1 &
	PD_REACTOR_PID=$!
}

# Stops the reactor with SIGTERM and returns its exit status.
pd_reactor_stop() {
	local rc=0
	kill -TERM "$PD_REACTOR_PID"
	wait "$PD_REACTOR_PID" || rc=$?
	PD_REACTOR_PID=
	return $rc
}

pd_cli() { "$PD_BIN/postdeploy" "$@" -c "$T/postdeploy.ini"; }

# pd_report: writes the JSON report to $T/report.json.
pd_report() { pd_cli report --format json >"$T/report.json"; }

# pd_state TENANT ACTION FIELD: a field of the last pd_report ("-" if the
# row is missing).
pd_state() {
	python3 -c '
import json, sys
rows = json.load(open(sys.argv[1]))
m = {(r["tenant"], r["action"]): r for r in rows}
r = m.get((sys.argv[2], sys.argv[3]))
print("-" if r is None else r[sys.argv[4]])' "$T/report.json" "$@"
}

# pd_rc VAR command...: runs command, output to $T/out, status into VAR.
pd_rc() {
	local __var=$1 __rc=0; shift
	"$@" >"$T/out" 2>&1 || __rc=$?
	printf -v "$__var" '%s' "$__rc"
}
