#!/usr/bin/env bash
# bench/b1_cpu.sh - benchmark 1's bursts by hand, with the CPU they cost per
# action: the reactor (and each of its threads), the Kafka broker and
# bench_load, read from /proc/PID/stat and /proc/PID/task/*/stat before and
# after the bursts (docs/BENCHMARKS.md, "1 on 2026-12-05").
#
#   bash bench/b1_cpu.sh                  BURSTS=3 bursts of N=1000 tenants x 10
#   REACTOR=/path/to/postdeploy-reactor PLUGIN=/path/to/bench_noop_plugin.so \
#       bash bench/b1_cpu.sh              another build (alternate old and new)
#   KAFKA="linger.ms = 5" bash bench/b1_cpu.sh   a [kafka] line for the reactor
#   PERF=1 bash bench/b1_cpu.sh           perf record -e cpu-clock --call-graph
#                                         dwarf on the reactor during the bursts
#
# Uses build-bench/ (bash bench/run.sh builds it) and the broker on
# 127.0.0.1:9092; the world is a /tmp/pdb.* folder, left for inspection.
set -euo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${PD_BENCH_BUILD_DIR:-$SRC/build-bench}
BIN=$BUILD/bench
N=${N:-1000}
BURSTS=${BURSTS:-3}
REACTOR=${REACTOR:-$BUILD/postdeploy-reactor}
PLUGIN=${PLUGIN:-$BIN/bench_noop_plugin.so}
id=$(date +%s%N | tail -c 10)-$$
W=/tmp/pdb.$id
mkdir -p "$W"
chmod 700 "$W"
cat >"$W/cfg.ini" <<INI
[kafka]
bootstrap.servers = ${PD_BROKERS:-127.0.0.1:9092}
${KAFKA:-}
[reactor]
group.id = bench-$id
state = $W/state.db
workers = 2
shutdown_grace = 5s
plugins = $PLUGIN
[topics]
events = bench.$id.events
results = bench.$id.results
dlq = bench.$id.dlq
INI
PD_BENCH_NOOP_ACTIONS=10 "$REACTOR" -c "$W/cfg.ini" >"$W/reactor.log" 2>&1 &
RPID=$!
trap 'kill -TERM $RPID 2>/dev/null || true' EXIT
for ((i = 0; i < 300; i++)); do
	grep -qs "worker(s), state" "$W/reactor.log" && break
	sleep 0.1
done
# ns of CPU of a process (its dead threads too)
cpu() { awk '{ printf "%.0f\n", ($14 + $15) * 10000000 }' "/proc/$1/stat"; }
threads() { # tid ns, per thread of the reactor
	for t in /proc/"$RPID"/task/*; do
		awk -v t="${t##*/}" '{ c = $0; sub(/\).*$/, "", c); sub(/^.*\(/, "", c); sub(/^.*\) /, ""); gsub(/ /, "_", c); printf "%s:%s %.0f\n", t, c, ($12 + $13) * 10000000 }' "$t/stat"
	done
}
"$BIN/bench_load" -c "$W/cfg.ini" -m burst -n 5 -p warm >"$W/warm.out"
JPID=$(pgrep -f kafka.Kafka | head -1)
threads >"$W/threads0"
r0=$(cpu "$RPID") j0=$(cpu "$JPID") l=0
if [ "${PERF:-0}" = 1 ]; then
	perf record -e cpu-clock --call-graph dwarf -F 999 -o "$W/perf.data" -p "$RPID" 2>"$W/perf.err" &
	PPID_=$!
	sleep 1
fi
for ((k = 1; k <= BURSTS; k++)); do
	/usr/bin/time -f "%e %U %S" -o "$W/load-$k.time" \
		"$BIN/bench_load" -c "$W/cfg.ini" -m burst -n "$N" -p "b${k}t" >"$W/load-$k.out"
	echo "$(grep -E "^rate=" "$W/load-$k.out") wal=$(stat -c %s "$W/state.db-wal" 2>/dev/null || echo 0)"
	l=$((l + $(awk '{ printf "%.0f", ($2 + $3) * 1e9 }' "$W/load-$k.time")))
done
[ "${PERF:-0}" = 1 ] && { kill -INT "$PPID_"; wait "$PPID_" || true; }
r1=$(cpu "$RPID") j1=$(cpu "$JPID")
threads >"$W/threads1"
A=$((N * 10 * BURSTS))
echo "per action (us): reactor $(((r1 - r0) / A / 1000)).$((((r1 - r0) / A / 100) % 10)), broker $(((j1 - j0) / A / 1000)).$((((j1 - j0) / A / 100) % 10)), bench_load $((l / A / 1000)).$(((l / A / 100) % 10))"
echo "reactor threads, ms over $A actions:"
join "$W/threads0" "$W/threads1" | awk '{ d = ($3 - $2) / 1e6; if (d > 0) printf "  %s %d\n", $1, d }' | sort -k2 -nr | head -8
echo "world: $W"
