#!/usr/bin/env bash
# The real broker goes away for 20 s in the middle of a deploy. The actions
# of two tenants are running (held on FIFOs) when the broker is stopped;
# they finish while it is down; it comes back with its data. Then: the
# `deploy --wait` started before the outage exits 0 (it reconnects and sees
# the results), every action ran exactly once, the reactor never exited,
# the report shows everything succeeded, the group's committed offsets
# covered only finished events all along, and a restarted reactor runs
# nothing again. While the broker is down, `postdeploy deploy` and
# `postdeploy report` exit 4 with "cannot reach Kafka" instead of hanging.
#
# The broker is stopped and started with scripts/kafka.sh (start with
# PD_KAFKA_KEEP_DATA=1), so it must be one that scripts/kafka.sh started; it
# is running again when this test ends, whatever happens, since the other
# tests share it. PD_OUTAGE_SECONDS changes the outage (default 20).
source "$(dirname "$0")/lib.sh"
pd_require_broker

KAFKA_SH=$PD_SOURCE_DIR/scripts/kafka.sh
OUTAGE_S=${PD_OUTAGE_SECONDS:-20}
case $PD_BROKERS in
*,*) pd_die "PD_BROKERS=$PD_BROKERS: this test stops one broker, give one" ;;
esac
# scripts/kafka.sh serves the port of PD_BROKERS.
export PD_KAFKA_PORT=${PD_KAFKA_PORT:-${PD_BROKERS##*:}}
DEPLOY_PID=

broker_answers() { kcat -b "$PD_BROKERS" -L -m 3 >/dev/null 2>&1; }
broker_stop() { bash "$KAFKA_SH" stop >>"$T/kafka.log" 2>&1; }
broker_start() { PD_KAFKA_KEEP_DATA=1 bash "$KAFKA_SH" start >>"$T/kafka.log" 2>&1; }

# Whatever happens, the broker answers again when this test is over.
outage_cleanup() {
	[ "$BASHPID" = "$$" ] || return 0
	if [ -n "$DEPLOY_PID" ] && kill -0 "$DEPLOY_PID" 2>/dev/null; then
		kill -KILL "$DEPLOY_PID" 2>/dev/null || true
	fi
	# An action still held on its FIFO would outlive us under the supervisor.
	for t in acme globex; do
		if [ -p "$T/markers/$t.release" ]; then
			timeout 5 sh -c "echo go >'$T/markers/$t.release'" 2>/dev/null || true
		fi
	done
	if ! broker_answers; then
		echo "restarting the broker on $PD_BROKERS"
		broker_start || { echo "FATAL: the broker did not come back:"; tail -n 20 "$T/kafka.log"; }
	fi
	pd_cleanup
}
trap outage_cleanup EXIT

bash "$KAFKA_SH" status 2>&1 | grep -q "(pid " ||
	pd_die "the broker on $PD_BROKERS was not started by scripts/kafka.sh (PD_KAFKA_DIR, XDG_CACHE_HOME): this test must stop and start it"

# block.sh TENANT: a line in its marker per run; when the test made the
# tenant's FIFOs, says it started and waits to be let go.
cat >"$T/block.sh" <<'SH'
#!/bin/sh
echo "block $1 $POSTDEPLOY_RELEASE" >>"$MARKERS/$1.block"
if [ -p "$MARKERS/$1.release" ]; then
	echo started >"$MARKERS/$1.started"
	read _ <"$MARKERS/$1.release"
fi
SH
chmod +x "$T/block.sh"
pd_action_script
pd_config <<INI
[action t.block]
run = $T/block.sh {tenant}
auto = true
[action t.ok]
run = $T/act.sh ok {tenant} 0
auto = true
[action t.after]
run = $T/act.sh after {tenant} 0
auto = true
after = t.block
INI
EVENTS=pdtest.$RUN_ID.events
GROUP=pdtest-$RUN_ID
ACTIONS="block ok after"

# "PARTITION CURRENT-OFFSET" of the group on the events topic, one line per
# partition it has an offset or a member for ("-": none committed).
committed() {
	bash "$KAFKA_SH" groups --describe --group "$GROUP" --offsets 2>/dev/null |
		awk -v t="$EVENTS" '$2 == t { print $3, $4 }'
}
# The committed offset of partition P, or 0 when none is.
committed_of() { committed | awk -v p="$1" '$1 == p && $2 != "-" { o = $2 } END { print o + 0 }'; }
# Records of the events topic and the sum of the committed offsets.
events_total() {
	kcat -C -b "$PD_BROKERS" -t "$EVENTS" -o beginning -e -q -f '%o\n' 2>/dev/null | wc -l | tr -d ' '
}
committed_total() { committed | awk '$2 != "-" { s += $2 } END { print s + 0 }'; }
# "PARTITION OFFSET" of the newest event of tenant (its key).
event_at() {
	kcat -C -b "$PD_BROKERS" -t "$EVENTS" -o beginning -e -q -f '%k %p %o\n' 2>/dev/null |
		awk -v k="$1" '$1 == k { p = $2; o = $3 } END { print p, o }'
}
# wait_for SECONDS what command...: polls command until it succeeds.
wait_for() {
	local limit=$1 what=$2 t0=$SECONDS; shift 2
	until "$@"; do
		((SECONDS - t0 < limit)) || pd_die "$what: not within ${limit}s"
		sleep 0.5
	done
}
# state_count TABLE: its rows in the reactor's state (read beside it: WAL).
state_count() {
	python3 -c 'import sqlite3, sys
db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True, timeout=10)
print(db.execute("SELECT count(*) FROM " + sys.argv[2]).fetchone()[0])' "$T/state/state.db" "$1"
}
# Whether the reactor recorded at least N events as processed.
events_done_ge() { [ "$(state_count events)" -ge "$1" ]; }
reactor_alive() { kill -0 "$PD_REACTOR_PID" 2>/dev/null; }

pd_reactor_start -X auto.commit.interval.ms=1000

# A tenant whose deploy finishes first: its offset gets committed, which
# shows the commits go on while the others' actions run.
pd_rc rc pd_cli deploy --auto --release 1.0.0 --tenant initech --wait --timeout 90s
pd_eq "a deploy before the outage exits 0" 0 "$rc"

for t in acme globex; do
	mkfifo "$T/markers/$t.started" "$T/markers/$t.release"
done
# --one: the named actions run whatever their state, so only the reactor's
# memory of the event (ce_source + ce_id) keeps a redelivered copy from
# running them again.
"$PD_BIN/postdeploy" deploy --one t.block --one t.ok --one t.after --release 1.0.0 \
	--tenant acme --tenant globex --wait --timeout 300s -c "$T/postdeploy.ini" \
	>"$T/deploy.out" 2>&1 &
DEPLOY_PID=$!
for t in acme globex; do
	timeout 60 cat "$T/markers/$t.started" >/dev/null || pd_die "$t's t.block never started"
done

# Nothing unfinished is committed: initech's offset is (its event is done),
# acme's and globex's are not, while their actions run. The check waits two
# commit intervals after initech's commit: what it pins is an absence.
committed_past() { [ "$(committed_of "$1")" -gt "$2" ]; }
read -r p_init o_init <<<"$(event_at initech)"
wait_for 30 "initech's offset committed" committed_past "$p_init" "$o_init"
sleep 2
for t in acme globex; do
	read -r p o <<<"$(event_at "$t")"
	pd_check "$t's event (partition $p, offset $o) is not committed while its action runs" \
		bash -c "[ $(committed_of "$p") -le $o ]"
done

# The outage: the broker stops while the actions run.
t_down=$SECONDS
broker_stop
pd_check "the broker is down" bash -c "! kcat -b '$PD_BROKERS' -L -m 2 >/dev/null 2>&1"
# The actions finish while it is down.
# (Disarmed then: a second run would not block, only add its marker line.)
for t in acme globex; do
	timeout 30 sh -c "echo go >'$T/markers/$t.release'" || pd_die "cannot release $t's t.block"
	rm -f "$T/markers/$t.release" "$T/markers/$t.started"
done

t0=$SECONDS
rc=0; timeout 60 "$PD_BIN/postdeploy" deploy --auto --release 1.0.1 --tenant acme \
	-c "$T/postdeploy.ini" >"$T/down.out" 2>&1 || rc=$?
took=$((SECONDS - t0))
cat "$T/down.out"
pd_eq "deploy while the broker is down exits 4" 4 "$rc"
pd_check "it says it cannot reach Kafka" grep -q "cannot reach Kafka" "$T/down.out"
pd_check "it says so within 20 s (took ${took}s)" test "$took" -le 20
rc=0; timeout 60 "$PD_BIN/postdeploy" report -c "$T/postdeploy.ini" >"$T/down-report.out" 2>&1 || rc=$?
pd_eq "report while the broker is down exits 4" 4 "$rc"
pd_check "report says it cannot reach Kafka" grep -q "cannot reach Kafka" "$T/down-report.out"

# The reactor records them while the broker is down.
wait_for 60 "the reactor recording both events while the broker is down" events_done_ge 3
pd_check "their results wait in the outbox ($(state_count outbox) records)" \
	test "$(state_count outbox)" -gt 0
pd_check "the reactor runs on while the broker is down" reactor_alive
pd_check "the deploy --wait runs on while the broker is down" kill -0 "$DEPLOY_PID"
left=$((OUTAGE_S - (SECONDS - t_down)))
if [ "$left" -gt 0 ]; then sleep "$left"; fi
pd_check "the broker was down ${OUTAGE_S}s and the reactor still runs" reactor_alive

broker_start || { tail -n 20 "$T/kafka.log"; pd_die "the broker did not start again"; }
echo "broker back after $((SECONDS - t_down))s"

# The deploy started before the outage sees the results once it is back.
rc=0; t0=$SECONDS
while kill -0 "$DEPLOY_PID" 2>/dev/null && ((SECONDS - t0 < 240)); do sleep 0.5; done
kill -0 "$DEPLOY_PID" 2>/dev/null && kill -KILL "$DEPLOY_PID" # hung: fails below
wait "$DEPLOY_PID" || rc=$?
DEPLOY_PID=
cat "$T/deploy.out"
pd_eq "the deploy --wait started before the outage exits 0" 0 "$rc"
pd_check "it saw 6 actions finish, none failed" grep -q "6 action(s) finished, 0 failed" "$T/deploy.out"

for t in initech acme globex; do
	for a in $ACTIONS; do
		pd_eq "$t: t.$a ran once" 1 "$(pd_lines "$T/markers/$t.$a")"
	done
done
outbox_empty() { [ "$(state_count outbox)" -eq 0 ]; }
wait_for 60 "the reactor's outbox delivered" outbox_empty
pd_check "the reactor never exited" reactor_alive

pd_report
for t in initech acme globex; do
	for a in $ACTIONS; do
		pd_eq "report: $t t.$a succeeded" succeeded "$(pd_state "$t" "t.$a" state)"
	done
done

# Finished work is committed, all of it; then a restart runs nothing again.
all_committed() { [ "$(committed_total)" -eq "$(events_total)" ]; }
wait_for 60 "every event's offset committed" all_committed
pd_eq "committed offsets cover the 3 events" 3 "$(committed_total)"
rc=0; pd_reactor_stop || rc=$?
pd_eq "the reactor stops cleanly after the outage" 0 "$rc"
pd_check "no run was cut short" bash -c "! grep -q INTERRUPTED '$T/reactor.log'"

restart_at=$(wc -l <"$T/reactor.log")
pd_reactor_start -X auto.commit.interval.ms=1000
pd_rc rc pd_cli deploy --auto --release 1.0.2 --tenant acme --tenant globex --tenant initech \
	--wait --timeout 90s
cat "$T/out"
pd_eq "a deploy after the restart exits 0" 0 "$rc"
pd_check "it had nothing left to run" grep -q "0 action(s) finished, 0 failed" "$T/out"
for t in initech acme globex; do
	for a in $ACTIONS; do
		pd_eq "$t: t.$a still ran once after the restart" 1 "$(pd_lines "$T/markers/$t.$a")"
	done
done
pd_check "the restarted reactor was handed no old event again" \
	bash -c "! tail -n +$((restart_at + 1)) '$T/reactor.log' | grep -q 'seen before'"
rc=0; pd_reactor_stop || rc=$?
pd_eq "the restarted reactor stops cleanly" 0 "$rc"
pd_done
