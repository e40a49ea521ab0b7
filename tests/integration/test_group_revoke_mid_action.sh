#!/usr/bin/env bash
# A rebalance while actions run (reactor.shared_group): r1 owns every
# partition and runs six tenants' 3 s action when r2 joins. r1's revoke
# lets the running actions finish (it does not kill them, nor hand their
# partitions on before they are recorded), commits their results with the
# offsets in a last transaction, and only then gives partitions up: each
# tenant's action ran once, on r1, and r2 starts past those events.
source "$(dirname "$0")/lib.sh"
pd_require_broker

cat >"$T/act.sh" <<'SH'
#!/bin/sh
echo "start $2 $PD_WHO" >>"$MARKERS/log"
sleep 3
echo "$2 $PD_WHO" >>"$MARKERS/$2"
SH
chmod +x "$T/act.sh"
pd_config <<INI
[action slow]
run = $T/act.sh slow {tenant}
auto = true
INI
sed -i -e "s|^\[reactor\]|[reactor]\nshared_group = true\nlease = 2s|" \
	-e "s|^workers = .*|workers = 8|" "$T/postdeploy.ini"

PIDS=()
reactor_start() { # reactor_start NAME: own HOME, state and config
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
await_line() { # await_line FILE PATTERN COUNT: up to 60 s
	for _ in $(seq 600); do
		[ "$(grep -c "$2" "$1" 2>/dev/null)" -ge "$3" ] && return 0
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

reactor_start r1
pd_check "r1 owns every partition" \
	await_line "$T/r1/reactor.log" 'rebalance: assigned partition(s) \[0,1,2\]' 1
tenants=(-t a -t b -t c -t d -t e -t f)
pd_cli deploy --auto --release 1.0 "${tenants[@]}" >/dev/null
pd_check "six actions run on r1" await_line "$T/markers/log" '^start' 6

reactor_start r2
pd_check "r1's partitions are revoked while the actions run" \
	await_line "$T/r1/reactor.log" 'rebalance: revoked' 1
pd_check "r2 is given partitions" \
	await_line "$T/r2/reactor.log" 'rebalance: assigned' 1
# The revoke waited for the actions: every marker was written before r2
# was given anything.
pd_eq "every action had finished when r2 got its partitions" 6 \
	"$(cat "$T"/markers/[a-f] 2>/dev/null | wc -l | tr -d ' ')"
# ... and committed with their offsets before r1 gave the partitions up, so
# r2 starts past those events: none is redelivered to it.
pd_eq "r1's last transaction committed the offset of every event" 6 \
	"$(bash "$PD_SOURCE_DIR/scripts/kafka.sh" groups --describe \
		--group "pdtest-$RUN_ID" --offsets 2>/dev/null |
		awk -v t="pdtest.$RUN_ID.events" '$2 == t && $4 != "-" { s += $4 } END { print s + 0 }')"
stop_all

runs=0 twice=0
for t in a b c d e f; do
	n=$(pd_lines "$T/markers/$t")
	runs=$((runs + n))
	[ "$n" -gt 1 ] && twice=$((twice + 1))
done
pd_eq "each tenant's action ran once" "6 0" "$runs $twice"
pd_eq "all on r1, none again on r2" "" "$(grep -h ' r2$' "$T"/markers/[a-f] || true)"
pd_eq "no action was interrupted" "" \
	"$(grep -h 'INTERRUPTED\|interrupting' "$T"/r1/reactor.log "$T"/r2/reactor.log || true)"
pd_done || { tail -n 30 "$T/r1/reactor.log" "$T/r2/reactor.log"; exit 1; }
