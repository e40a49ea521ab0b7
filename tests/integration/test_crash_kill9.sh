#!/usr/bin/env bash
# kill -9 of the reactor at every point of an event's life, then a restart:
# every event is processed, every command action with policy once completes
# exactly once (the actions append to marker files as their last step), an
# in-process action cut short is re-run, the deploy's --wait (started before
# the crash) still ends with success, and nothing is lost.
#
# The points are passed in consumer/txn.c, worker.c, dispatch.c and
# outbox.c (pd_crashpoint, consumer/fault.c): the reactor
# SIGKILLs itself there when PD_CRASH_AT names it. "during_run" is a kill
# from outside while an action runs. PD_CRASH_POINTS="a b" runs a subset;
# PD_CRASH_REACTOR_SET adds lines to [reactor] (e.g. shared_group = true).
# run.after_start comes once a command's START is out, before its run's row
# is committed: the restarted reactor must find the run at the supervisor
# by its name (consumer/worker.c, pd_run_sup_id), not run it again. The
# recover.* points crash a reactor recovering from a kill -9 taken while
# acme's t.a waits at a gate, with a run without an outcome in the store.
# Since 2026-12-05 a command's row is written whole at its end, so no
# reactor of today leaves one: it is put there as a reactor before that
# left it (another event's run, which its supervisor does not know, so
# recovery records it INTERRUPTED); the gated run itself is found again
# by its name, as at run.after_start.
source "$(dirname "$0")/lib.sh"
pd_require_broker
PLUGIN=$PD_BUILD_DIR/libpostdeploy_example_plugin.so
[ -f "$PLUGIN" ] || pd_die "the example plugin is not built: $PLUGIN"

POINTS=${PD_CRASH_POINTS:-"
dispatch.received
registry.before_commit registry.after_commit registry.after_produce
dead_letter.before_commit dead_letter.after_commit dead_letter.after_produce
plan.before_commit plan.after_commit plan.after_produce
started.before_commit started.after_commit started.after_produce
run.before_spawn run.after_start during_run run.after_exit
finished.before_commit finished.after_commit finished.after_produce
verdict.before_commit verdict.after_commit verdict.after_produce
event_done.before_commit event_done.after_commit event_done.after_produce
offsets.before_store reap.before_delete
recover.before_commit recover.after_commit recover.after_produce
"}

# A world per point: its own topics, group, state, markers.
one_point() {
	local point=$1 dir=$T/$1 rc pid cli first second gate_ms=
	mkdir -p "$dir/markers"
	RUN_ID=$(date +%s)-$$-$RANDOM
	cat >"$dir/act.sh" <<'SH'
#!/bin/sh
# act.sh NAME TENANT: the marker line is the last thing it does.
# For during_run, acme's t.a alone waits at a gate, so that exactly one
# action is running when the reactor is killed.
if [ -p "$MARKERS/gate.$2.$1" ]; then echo started >"$MARKERS/started"; read _ <"$MARKERS/gate.$2.$1"; fi
echo "$1" >>"$MARKERS/$2.$1"
SH
	chmod +x "$dir/act.sh"
	cat >"$dir/pd.ini" <<INI
[kafka]
bootstrap.servers = $PD_BROKERS
session.timeout.ms = 6000
# Static membership: a restarted reactor takes its partitions back at once.
group.instance.id = pdcrash-$RUN_ID
[reactor]
group.id = pdcrash-$RUN_ID
state = $dir/state/state.db
workers = 2
shutdown_grace = 5s
plugins = $PLUGIN
[topics]
events = pdcrash.$RUN_ID.events
results = pdcrash.$RUN_ID.results
dlq = pdcrash.$RUN_ID.dlq
partitions = 2
[action t.a]
run = $dir/act.sh a {tenant}
auto = true
[action t.b]
run = $dir/act.sh b {tenant}
auto = true
after = t.a
INI
	# PD_CRASH_REACTOR_SET="shared_group = true": the same points in
	# another mode (lines added to [reactor]).
	if [ -n "${PD_CRASH_REACTOR_SET:-}" ]; then
		sed -i "s|^\[reactor\]|[reactor]\n$PD_CRASH_REACTOR_SET|" "$dir/pd.ini"
	fi
	start() { # start [CRASH_POINT]
		PD_CRASH_AT=${1:-} MARKERS=$dir/markers "$PD_BIN/postdeploy-reactor" -c "$dir/pd.ini" \
			>>"$dir/reactor.log" 2>&1 &
		pid=$!
	}
	# Waits for the reactor to die by its crash point: 137 is SIGKILL.
	await_crash() {
		local rc=0
		# tail --pid returns when the reactor is gone; timeout bounds it. No
		# watchdog subshell: a subshell killed here would run the EXIT trap.
		timeout 60 tail --pid="$pid" -f /dev/null || kill -TERM "$pid" 2>/dev/null
		wait "$pid" || rc=$?
		[ "$rc" = 137 ] || { echo "FAIL - $point: the reactor did not crash there (status $rc)"; tail -5 "$dir/reactor.log"; return 1; }
	}

	first=$point second=
	case $point in
	recover.*) first= second=$point; mkfifo "$dir/markers/gate.acme.a" "$dir/markers/started" ;;
	during_run) first= ; mkfifo "$dir/markers/gate.acme.a" "$dir/markers/started" ;;
	esac
	start "$first"
	# The poison record goes first: acme's deploy, behind it in the same
	# partition, cannot finish before it has been dead-lettered.
	"$PD_BIN/postdeploy" deploy --one t.nope --no-check --release 1 --tenant acme \
		-c "$dir/pd.ini" >/dev/null 2>&1
	printf 'poison' | kcat -P -b "$PD_BROKERS" -t "pdcrash.$RUN_ID.events" -k acme \
		-H ce_specversion=1.0 -H ce_id=p1 -H ce_source=t -H ce_type=release.deployed
	"$PD_BIN/postdeploy" deploy --auto --release 1 --tenant acme --tenant globex --wait \
		--timeout 120s -c "$dir/pd.ini" >"$dir/cli.out" 2>&1 &
	cli=$!
	if [ "$point" = during_run ] || [ -n "$second" ]; then
		read -r -t 60 _ <>"$dir/markers/started" || { echo "FAIL - $point: no action started"; return 1; }
		if [ "$point" = during_run ]; then
			# Until its action.started is on the results topic: the batch
			# that held its start is committed (a row written at the start
			# would be in the store now).
			local tries=0
			until kcat -C -b "$PD_BROKERS" -t "pdcrash.$RUN_ID.results" -o beginning -e -q \
				-f '%k %h\n' 2>/dev/null | grep '^acme/t.a ' | grep -q 'ce_type=action.started'; do
				tries=$((tries + 1))
				[ "$tries" -lt 300 ] || { echo "FAIL - $point: no action.started of acme's t.a"; return 1; }
				sleep 0.1
			done
		fi
		kill -KILL "$pid"; wait "$pid" 2>/dev/null || true
		# A command's row is written whole at its end (consumer/worker.c):
		# the run at the gate, going on without its reactor, has none.
		if [ "$point" = during_run ] &&
			[ "$(sqlite3 "$dir/state/state.db" "PRAGMA busy_timeout = 2000;
				SELECT count(*) FROM runs WHERE tenant = 'acme' AND action = 't.a'" | tail -1)" != 0 ]; then
			echo "FAIL - $point: the running command already has a row in the store"; return 1
		fi
		if [ -n "$second" ]; then
			# A run without an outcome, as a reactor before 2026-12-05
			# left one (its row written at its start): recovery asks the
			# supervisor, which does not know it, and records it
			# INTERRUPTED; that commit is where the second crash comes.
			sqlite3 "$dir/state/state.db" "PRAGMA busy_timeout = 2000;
				INSERT INTO runs (id, tenant, action, release, trigger_source,
					trigger_id, attempt, started_at, sup_id)
				SELECT coalesce(max(id), 0) + 1, 'acme', 't.a', '0', 't',
					'older-event', 1, 1, 12345 FROM runs;" >/dev/null ||
				{ echo "FAIL - $point: cannot add the unfinished run"; return 1; }
			[ "$(sqlite3 "$dir/state/state.db" "SELECT count(*) FROM runs WHERE status IS NULL")" = 1 ] ||
				{ echo "FAIL - $point: the store does not hold one unfinished run"; return 1; }
		fi
		# The action goes on without its reactor and finishes; later runs
		# find no gate. It began before this moment, its reactor dead.
		gate_ms=$(date +%s%3N)
		echo go >"$dir/markers/gate.acme.a"
		rm -f "$dir/markers/gate.acme.a"
	else
		await_crash || return 1
	fi
	if [ -n "$second" ]; then
		start "$second"; await_crash || return 1
	fi
	start
	rc=0; wait "$cli" || rc=$?
	kill -TERM "$pid"; wait "$pid" || true

	local bad=""
	[ "$rc" = 0 ] || bad="$bad deploy--wait=$rc"
	for t in acme globex; do
		for a in a b; do
			n=$(pd_lines "$dir/markers/$t.$a")
			[ "$n" = 1 ] || bad="$bad $t.$a-ran-$n-times"
		done
	done
	"$PD_BIN/postdeploy" report --format json -c "$dir/pd.ini" >"$dir/report.json" 2>/dev/null
	for t in acme globex; do
		for a in t.a t.b example.count_orders; do
			st=$(T=$dir pd_state "$t" "$a" state)
			[ "$st" = succeeded ] || bad="$bad $t/$a=$st"
		done
	done
	if [ "$point" = during_run ]; then
		# The run the supervisor handed back to the redelivered event is
		# recorded with its own times, not the moment it was handed back.
		python3 - "$dir/report.json" "$gate_ms" <<'PY' || bad="$bad acme/t.a-recorded-as-started-after-the-kill"
import json, sys
from datetime import datetime
row = [r for r in json.load(open(sys.argv[1])) if (r["tenant"], r["action"]) == ("acme", "t.a")][0]
started = datetime.fromisoformat(row["started_at"].replace("Z", "+00:00")).timestamp() * 1000
sys.exit(0 if started <= int(sys.argv[2]) else 1)
PY
	fi
	n=$(kcat -C -b "$PD_BROKERS" -t "pdcrash.$RUN_ID.dlq" -o beginning -e -q -f '%h\n' 2>/dev/null | grep -c postdeploy_error || true)
	[ "$n" -ge 1 ] || bad="$bad dead-letter-lost"
	if [ -z "$bad" ]; then
		echo "ok   - kill -9 at $point: all processed, each action exactly once"
	else
		echo "FAIL - kill -9 at $point:$bad"
		tail -n 8 "$dir/reactor.log" "$dir/cli.out"
		return 1
	fi
}

for point in $POINTS; do
	PD_CHECKS=$((PD_CHECKS + 1))
	one_point "$point" || PD_FAILS=$((PD_FAILS + 1))
done
echo "$PD_CHECKS kill points"
pd_done
