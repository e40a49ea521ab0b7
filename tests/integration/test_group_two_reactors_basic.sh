#!/usr/bin/env bash
# Two reactors in one consumer group (reactor.shared_group = true), each with
# its own HOME, state folder and config, nothing shared but Kafka: the events
# topic's partitions are split between them, every (tenant, action) runs
# exactly once, the results topic read with isolation.level=read_committed
# holds each action.finished once, and `postdeploy report` agrees.
source "$(dirname "$0")/lib.sh"
pd_require_broker
N_TENANTS=20
ACTIONS="a1 a2 a3"

cat >"$T/act.sh" <<'SH'
#!/bin/sh
# usage: act.sh ACTION TENANT: one line per run, and an overlap shows as a
# lock already taken.
lock=$MARKERS/$2.$1.lock
mkdir "$lock" 2>/dev/null || echo "OVERLAP $2 $1 $PD_WHO" >>"$MARKERS/overlaps"
echo "$2 $1 $PD_WHO" >>"$MARKERS/$2.$1"
rmdir "$lock" 2>/dev/null || true
SH
chmod +x "$T/act.sh"
{
	for a in $ACTIONS; do
		printf '[action %s]\nrun = %s %s {tenant}\nauto = true\n' \
			"$a" "$T/act.sh" "$a"
	done
} | pd_config
sed -i "s|^\[reactor\]|[reactor]\nshared_group = true\nlease = 2s|" "$T/postdeploy.ini"

# One folder per reactor: its own HOME, state (and so supervisor) and config.
PIDS=()
reactor_start() { # reactor_start NAME
	local d=$T/$1
	mkdir -p "$d/home"
	sed -e "s|^state = .*|state = $d/state/state.db|" \
		-e "s|^log_dir = .*|log_dir = $d/logs|" \
		-e "s|^\[reactor\]|[reactor]\nname = $1|" \
		"$T/postdeploy.ini" >"$d/postdeploy.ini"
	HOME=$d/home PD_WHO=$1 MARKERS=$T/markers \
		PD_SUPERVISOR_EXE=$PD_BIN/postdeploy-reactor \
		"$PD_BIN/postdeploy-reactor" -c "$d/postdeploy.ini" >>"$d/reactor.log" 2>&1 &
	PIDS+=($!)
}
# Waits (up to 60 s) until NAME's log says it was given partitions.
await_assigned() {
	for _ in $(seq 600); do
		grep -q 'rebalance: assigned' "$T/$1/reactor.log" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
stop_all() {
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	PIDS=()
}
trap 'stop_all; pd_cleanup' EXIT

# A results topic with fewer partitions than the events topic: a tenant's
# results could not follow its events, so the reactor refuses to start.
sed -e "s|^events = .*|events = pdtest.$RUN_ID.other-events|" \
	-e "s|^results = .*|results = pdtest.$RUN_ID.two-results|" \
	-e "s|^partitions = .*|partitions = 2|" "$T/postdeploy.ini" >"$T/two.ini"
"$PD_BIN/postdeploy" deploy --one a1 --no-check --release 1 --tenant t \
	-c "$T/two.ini" >/dev/null # creates both with 2 partitions
sed -e "s|^results = .*|results = pdtest.$RUN_ID.two-results|" \
	"$T/postdeploy.ini" >"$T/mismatch.ini"
pd_rc rc timeout 20 "$PD_BIN/postdeploy-reactor" -c "$T/mismatch.ini"
pd_eq "unequal partition counts stop the start" 1 "$rc"
pd_check "the message names both topics and counts" grep -q \
	"topic pdtest.$RUN_ID.events has 3 partition(s) and topic pdtest.$RUN_ID.two-results has 2" "$T/out"

reactor_start r1
pd_check "r1 joins the group and is given partitions" await_assigned r1
reactor_start r2
pd_check "r2 joins the group and is given partitions" await_assigned r2
# The rebalance r2's join started is over once r1 has been given its share
# again: its second assignment.
for _ in $(seq 600); do
	[ "$(grep -c 'rebalance: assigned' "$T/r1/reactor.log")" -ge 2 ] && break
	sleep 0.1
done
pd_check "r1 took its share again after r2 joined" \
	test "$(grep -c 'rebalance: assigned' "$T/r1/reactor.log")" -ge 2

tenants=()
for i in $(seq -w 1 $N_TENANTS); do tenants+=(--tenant "t$i"); done
pd_rc rc pd_cli deploy --auto --release 1.0 "${tenants[@]}" --wait --timeout 120s
pd_eq "every action of every tenant finished well" 0 "$rc"

missing=0 twice=0
for i in $(seq -w 1 $N_TENANTS); do
	for a in $ACTIONS; do
		n=$(pd_lines "$T/markers/t$i.$a")
		[ "$n" = 0 ] && missing=$((missing + 1))
		[ "$n" -gt 1 ] && twice=$((twice + 1))
	done
done
pd_eq "no (tenant, action) left without a run" 0 "$missing"
pd_eq "no (tenant, action) run twice" 0 "$twice"
pd_eq "no two runs of one (tenant, action) at once" 0 "$(pd_lines "$T/markers/overlaps")"
pd_check "both reactors ran actions" \
	bash -c "grep -qh ' r1$' '$T'/markers/t* && grep -qh ' r2$' '$T'/markers/t*"

# What a read_committed reader sees: each action.finished once.
kcat -C -b "$PD_BROKERS" -t "pdtest.$RUN_ID.results" -o beginning -e -q \
	-X isolation.level=read_committed -f '%k %p|%h\n' 2>/dev/null |
	grep 'ce_type=action.finished' | cut -d'|' -f1 | sort >"$T/finished"
pd_eq "one committed action.finished per (tenant, action)" \
	$((N_TENANTS * 3)) "$(cut -d' ' -f1 "$T/finished" | sort -u | wc -l | tr -d ' ')"
pd_eq "no action.finished committed twice" "" \
	"$(cut -d' ' -f1 "$T/finished" | uniq -d)"
# Co-partitioning: a tenant's results sit in one results partition, the one
# its events came from.
pd_eq "each tenant's results in one partition" "$N_TENANTS" \
	"$(sed 's|/[^ ]* | |' "$T/finished" | sort -u | wc -l | tr -d ' ')"

pd_report
bad=0
for i in $(seq -w 1 $N_TENANTS); do
	for a in $ACTIONS; do
		[ "$(pd_state "t$i" "$a" state)" = succeeded ] || bad=$((bad + 1))
	done
done
pd_eq "report: every (tenant, action) succeeded" 0 "$bad"

stop_all
pd_eq "r1 stopped without an error line" "" \
	"$(grep -E 'ERROR|error:' "$T/r1/reactor.log" | head -3)"
pd_eq "r2 stopped without an error line" "" \
	"$(grep -E 'ERROR|error:' "$T/r2/reactor.log" | head -3)"
# The offsets went with the results, in the same transactions: the group's
# committed offsets cover every event.
EVENTS=pdtest.$RUN_ID.events
committed_total() {
	bash "$PD_SOURCE_DIR/scripts/kafka.sh" groups --describe \
		--group "pdtest-$RUN_ID" --offsets 2>/dev/null |
		awk -v t="$EVENTS" '$2 == t && $4 != "-" { s += $4 } END { print s + 0 }'
}
pd_eq "the group committed the offset of every event" \
	"$(kcat -C -b "$PD_BROKERS" -t "$EVENTS" -o beginning -e -q -f '%o\n' 2>/dev/null | wc -l | tr -d ' ')" \
	"$(committed_total)"
pd_done || { tail -n 40 "$T/r1/reactor.log" "$T/r2/reactor.log"; exit 1; }
