# lib_group.sh - several reactors in one consumer group on one machine,
# sharing nothing but Kafka: each has its own HOME, state folder, config
# and log. Source it after lib.sh.
#
#   pg_config <<INI        the [action] sections every reactor runs
#   pg_start N             start reactor rN; returns once its /readyz is 200
#   pg_stop N              SIGTERM, await its exit (returns its status)
#   pg_kill N              kill -9, await its exit
#   pg_pause N / pg_resume N   SIGSTOP / SIGCONT
#   pg_list                the reactors and their state
#   pg_mark_script         $T/mark.sh TENANT ACTION [SECONDS]: the marker action
#   pg_await_runs N [S]    await N finished marker lines (S seconds at most)
#   pg_check [--allow-interrupted]   the checker (group_check.py)
#
# The design's keys (`[reactor] shared_group`, `lease`) are written unless
# PD_GROUP_KEYS=0, which leaves them out so that the harness can run against
# a reactor that does not know them yet (unknown keys stop a start).
#
# Each step is written to $T/timeline as "NS EVENT rN", which the zombie
# test reads for the time a reactor was stopped.

: "${PD_GROUP_KEYS:=1}"
: "${PG_PARTITIONS:=6}"
: "${PG_WORKERS:=4}"
: "${PG_LEASE:=2s}"
PG_PY=
# PG_WORKERS_OF[N]: reactor N's own number of workers (else PG_WORKERS).
declare -A PG_PID=() PG_PORT=() PG_STATE=() PG_WORKERS_OF=()
mkdir -p "$T/markers"
: >"$T/timeline"

# Stops what the group tests started: every reactor still there, and the
# supervisors under $T (they outlive a kill -9 of their reactor by design).
pg_cleanup() {
	[ "$BASHPID" = "$$" ] || return 0
	local n pid
	for n in "${!PG_PID[@]}"; do
		pid=${PG_PID[$n]}
		[ -n "$pid" ] || continue
		kill -CONT "$pid" 2>/dev/null || true
		kill -KILL "$pid" 2>/dev/null || true
	done
	for pid in $(pgrep -f -- "--supervisor $T/" 2>/dev/null || true); do
		kill -KILL "$pid" 2>/dev/null || true
	done
	pd_cleanup
}
trap pg_cleanup EXIT

pg_now() { date +%s%N; }
pg_event() { echo "$(pg_now) $1 r$2" >>"$T/timeline"; }

# The venv's python (confluent-kafka, fastavro), as test_interop.sh uses.
pg_python() {
	if [ -z "$PG_PY" ]; then
		PG_PY=${PD_PYTHON:-$(bash "$PD_SOURCE_DIR/tests/interop/venv.sh")}
		[ -x "$PG_PY" ] || pd_die "no Python venv with confluent-kafka and fastavro ($PG_PY)"
	fi
	echo "$PG_PY"
}

pg_free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Writes $T/actions.ini from stdin and $T/postdeploy.ini, the CLI's config
# (lib.sh's pd_cli and pd_report read it): the group's topics and tenants.
pg_config() {
	cat >"$T/actions.ini"
	cat >"$T/postdeploy.ini" <<INI
[kafka]
bootstrap.servers = $PD_BROKERS
[reactor]
group.id = pdtest-$RUN_ID
[topics]
events = pdtest.$RUN_ID.events
results = pdtest.$RUN_ID.results
dlq = pdtest.$RUN_ID.dlq
partitions = $PG_PARTITIONS
[cli]
tenants = acme
INI
	cat "$T/actions.ini" >>"$T/postdeploy.ini"
}

# Reactor N's config: its own state, logs and HTTP port; the group's
# topics and group.id; session.timeout.ms = 6000 (the broker's minimum) so a
# killed or stopped member leaves the group within seconds.
pg_reactor_config() {
	local n=$1 d=$T/r$1
	mkdir -p "$d/home" "$d/state" "$d/logs"
	{
		cat <<INI
[kafka]
bootstrap.servers = $PD_BROKERS
session.timeout.ms = 6000
[reactor]
group.id = pdtest-$RUN_ID
name = r$n
state = $d/state/state.db
log_dir = $d/logs
workers = ${PG_WORKERS_OF[$n]:-$PG_WORKERS}
shutdown_grace = 10s
http = 127.0.0.1:${PG_PORT[$n]}
INI
		if [ "$PD_GROUP_KEYS" != 0 ]; then
			echo "shared_group = true"
			echo "lease = $PG_LEASE"
		fi
		cat <<INI
[topics]
events = pdtest.$RUN_ID.events
results = pdtest.$RUN_ID.results
dlq = pdtest.$RUN_ID.dlq
partitions = $PG_PARTITIONS
INI
		cat "$T/actions.ini"
	} >"$d/postdeploy.ini"
}

# Awaits HTTP 200 from reactor N's /readyz: joined, partitions assigned,
# state restored. Fails (with the log's end) when the reactor exits or S
# seconds pass.
pg_await_ready() { # pg_await_ready N [S]
	local n=$1 limit=$(($(date +%s) + ${2:-60})) code
	while :; do
		code=$(curl -s -o /dev/null -w '%{http_code}' \
			"http://127.0.0.1:${PG_PORT[$n]}/readyz" 2>/dev/null || true)
		[ "$code" = 200 ] && return 0
		if ! kill -0 "${PG_PID[$n]}" 2>/dev/null; then
			echo "reactor r$n exited before it was ready; its log ends:" >&2
			tail -n 20 "$T/r$n/reactor.log" >&2
			return 1
		fi
		if [ "$(date +%s)" -ge "$limit" ]; then
			echo "reactor r$n not ready after ${2:-60} s (/readyz: $code)" >&2
			tail -n 20 "$T/r$n/reactor.log" >&2
			return 1
		fi
		sleep 0.1
	done
}

# pg_start N [--no-wait]: starts reactor rN (again, after a stop or a kill:
# same state folder, same name) and awaits its readiness.
pg_start() {
	local n=$1
	[ -n "${PG_PORT[$n]:-}" ] || PG_PORT[$n]=$(pg_free_port)
	pg_reactor_config "$n"
	HOME=$T/r$n/home MARKERS=$T/markers PG_REACTOR=r$n \
		PD_SUPERVISOR_EXE=$PD_BIN/postdeploy-reactor \
		"$PD_BIN/postdeploy-reactor" -c "$T/r$n/postdeploy.ini" \
		>>"$T/r$n/reactor.log" 2>&1 &
	PG_PID[$n]=$!
	PG_STATE[$n]=running
	pg_event start "$n"
	[ "${2:-}" = --no-wait ] && return 0
	pg_await_ready "$n" || pd_die "reactor r$n did not become ready"
	pg_event ready "$n"
}

pg_stop() { # returns the reactor's exit status
	local n=$1 rc=0
	kill -TERM "${PG_PID[$n]}"
	wait "${PG_PID[$n]}" || rc=$?
	PG_PID[$n]=
	PG_STATE[$n]="stopped (exit $rc)"
	pg_event stopped "$n"
	return $rc
}

pg_kill() {
	local n=$1
	kill -KILL "${PG_PID[$n]}"
	wait "${PG_PID[$n]}" 2>/dev/null || true
	PG_PID[$n]=
	PG_STATE[$n]=killed
	pg_event killed "$n"
}

pg_pause() {
	kill -STOP "${PG_PID[$1]}"
	PG_STATE[$1]=stopped
	pg_event sigstop "$1"
}

pg_resume() {
	kill -CONT "${PG_PID[$1]}"
	PG_STATE[$1]=running
	pg_event sigcont "$1"
}

pg_list() {
	local n
	for n in $(printf '%s\n' "${!PG_STATE[@]}" | sort -n); do
		echo "r$n: ${PG_STATE[$n]} pid=${PG_PID[$n]:-} port=${PG_PORT[$n]}"
	done
}

# One metric of reactor N ("" if it does not answer).
pg_metric() { # pg_metric N NAME
	curl -s "http://127.0.0.1:${PG_PORT[$1]}/metrics" 2>/dev/null |
		awk -v m="$2" '$1 == m { print $2 }'
}

# The marker action. A run takes the (tenant, action) lock (an atomic
# rename of a directory naming its holder); finding it held by a live run is an overlap, recorded in
# markers/overlap (the run goes on: the double run shows in the markers
# too). A lock left by a run that was killed (SIGKILL) is taken over and
# noted in markers/stale. Lines, all appended whole (< PIPE_BUF):
#   markers/begun:        BEGIN tenant action reactor start_ns pid
#   markers/runs:         tenant action reactor start_ns end_ns
#   markers/interrupted:  tenant action reactor start_ns pid (SIGTERM)
pg_mark_script() {
	cat >"$T/mark.sh" <<'SH'
#!/bin/sh
# usage: mark.sh TENANT ACTION [SECONDS]
t=$1 a=$2 s=${3:-0.2}
lock=$MARKERS/$t.$a.lock
start=$(date +%s%N)
echo "BEGIN $t $a $PG_REACTOR $start $$" >>"$MARKERS/begun"
# The lock is made whole beside it and renamed into place: rename(2) of a
# directory onto a non-empty one fails, so the lock is taken atomically and
# always names its holder.
mkdir "$lock.$$"
echo $$ >"$lock.$$/pid"
echo "$PG_REACTOR" >"$lock.$$/who"
own=0
if mv -T "$lock.$$" "$lock" 2>/dev/null; then
	own=1
else
	holder=$(cat "$lock/pid" 2>/dev/null || true)
	if [ -n "$holder" ] && kill -0 "$holder" 2>/dev/null; then
		echo "OVERLAP $t $a $PG_REACTOR $start $(cat "$lock/who" 2>/dev/null)" >>"$MARKERS/overlap"
		rm -rf "$lock.$$"
	else
		echo "STALE $t $a $PG_REACTOR $start $(cat "$lock/who" 2>/dev/null)" >>"$MARKERS/stale"
		rm -rf "$lock"
		mv -T "$lock.$$" "$lock" && own=1
	fi
fi
release() { if [ "$own" = 1 ]; then rm -rf "$lock"; fi; }
trap 'echo "$t $a $PG_REACTOR $start $$" >>"$MARKERS/interrupted"; release; exit 143' TERM INT
sleep "$s" &
wait $!
echo "$t $a $PG_REACTOR $start $(date +%s%N)" >>"$MARKERS/runs"
release
SH
	chmod +x "$T/mark.sh"
}

# Awaits N lines in markers/runs; returns 1 after S seconds (default 120).
pg_await_runs() { # pg_await_runs N [S]
	local limit=$(($(date +%s) + ${2:-120}))
	while [ "$(pd_lines "$T/markers/runs")" -lt "$1" ]; do
		[ "$(date +%s)" -lt "$limit" ] || return 1
		sleep 0.1
	done
}

# $T/expected: "tenant action release" per once-action that must have run.
pg_expect() { # pg_expect RELEASE ACTION... < tenants
	local t a
	while read -r t; do
		for a in "${@:2}"; do echo "$t $a $1"; done
	done >>"$T/expected"
}

# The results topic as JSON lines, read with ISOLATION
# (read_committed | read_uncommitted), to FILE.
pg_dump_results() { # pg_dump_results ISOLATION FILE
	"$(pg_python)" "$PD_SOURCE_DIR/tests/integration/group_check.py" dump \
		"$PD_BROKERS" "pdtest.$RUN_ID.results" "$1" >"$2"
}

# The checker: markers against $T/expected, the committed results and the
# report. Prints every problem; one pd_check line.
pg_check() { # pg_check [--allow-interrupted] [--zombie rN --since NS]
	pg_dump_results read_committed "$T/committed.jsonl"
	pg_dump_results read_uncommitted "$T/uncommitted.jsonl"
	pd_report
	pd_check "the group checker finds every once-action run exactly once" \
		"$(pg_python)" "$PD_SOURCE_DIR/tests/integration/group_check.py" check \
		--markers "$T/markers" --expected "$T/expected" \
		--committed "$T/committed.jsonl" --uncommitted "$T/uncommitted.jsonl" \
		--report "$T/report.json" --timeline "$T/timeline" "$@"
}

# On failure: the end of every reactor's log.
pg_done() {
	local d
	if [ "$PD_FAILS" -gt 0 ]; then
		pg_list
		for d in "$T"/r*/; do
			echo "--- ${d%/}/reactor.log ---"
			tail -n 15 "$d/reactor.log" 2>/dev/null || true
		done
	fi
	pd_done
}

# Awaits a report in which every expected (tenant, action) has succeeded
# with its release; returns 1 after S seconds (default 120).
pg_await_report() { # pg_await_report [S]
	local limit=$(($(date +%s) + ${1:-120}))
	while :; do
		if pd_report 2>/dev/null && python3 -c '
import json, sys
rows = {(r["tenant"], r["action"]): r for r in json.load(open(sys.argv[1]))}
for l in open(sys.argv[2]):
    t, a, rel = l.split()
    r = rows.get((t, a))
    if r is None or r["state"] != "succeeded" or r["release"] != rel:
        sys.exit(1)' "$T/report.json" "$T/expected"; then
			return 0
		fi
		[ "$(date +%s)" -lt "$limit" ] || return 1
		sleep 1
	done
}
