#!/usr/bin/env bash
# bench/b2_cpu.sh - benchmark 2's burst by hand, with the CPU it cost per
# action split by process: the reactor, the supervisor, the commands the
# supervisor reaped, and the Kafka broker (docs/BENCHMARKS.md, "2 on
# 2026-12-04"). CPU is read from /proc/PID/stat (utime + stime, and the
# supervisor's cutime + cstime) before and after the burst.
#
#   bash bench/b2_cpu.sh              N=1000 tenants x 10 /bin/true
#   REACTOR=/path/to/postdeploy-reactor bash bench/b2_cpu.sh
#
# Uses build-bench/ (bash bench/run.sh builds it) and the broker on
# 127.0.0.1:9092; the world is a /tmp/pdb.* folder, left for inspection.
set -euo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${PD_BENCH_BUILD_DIR:-$SRC/build-bench}
BIN=$BUILD/bench
N=${N:-1000}
id=$(date +%s%N | tail -c 10)-$$
W=/tmp/pdb.$id
mkdir -p "$W"
chmod 700 "$W"
cat >"$W/cfg.ini" <<INI
[kafka]
bootstrap.servers = ${PD_BROKERS:-127.0.0.1:9092}
[reactor]
group.id = bench-$id
state = $W/state.db
workers = 2
shutdown_grace = 5s
[topics]
events = bench.$id.events
results = bench.$id.results
dlq = bench.$id.dlq
INI
for ((i = 0; i < 10; i++)); do
	printf '[action bench.true%d]\nrun = /bin/true\nauto = true\n' "$i" >>"$W/cfg.ini"
done
"${REACTOR:-$BUILD/postdeploy-reactor}" -c "$W/cfg.ini" >"$W/reactor.log" 2>&1 &
RPID=$!
trap 'kill -TERM $RPID 2>/dev/null || true' EXIT
for ((i = 0; i < 300; i++)); do
	grep -qs "worker(s), state" "$W/reactor.log" && break
	sleep 0.1
done
# ns of CPU of a process (its dead threads too), and of its reaped children
cpu() { awk '{ printf "%.0f\n", ($14 + $15) * 10000000 }' "/proc/$1/stat"; }
kids() { awk '{ printf "%.0f\n", ($16 + $17) * 10000000 }' "/proc/$1/stat"; }
# A first small burst starts the supervisor and warms every client.
"$BIN/bench_load" -c "$W/cfg.ini" -m burst -n 5 -p warm >"$W/warm.out"
SPID=$(pgrep -f -- "--supervisor $W/supervisor-" | head -1)
JPID=$(pgrep -f kafka.Kafka | head -1)
r0=$(cpu "$RPID") s0=$(cpu "$SPID") c0=$(kids "$SPID") j0=$(cpu "$JPID")
"$BIN/bench_load" -c "$W/cfg.ini" -m burst -n "$N" >"$W/load.out"
r1=$(cpu "$RPID") s1=$(cpu "$SPID") c1=$(kids "$SPID") j1=$(cpu "$JPID")
A=$((N * 10))
grep -E "^(actions|rate)=" "$W/load.out"
echo "per action (us): reactor $(((r1 - r0) / A / 1000)), supervisor $(((s1 - s0) / A / 1000)), commands $(((c1 - c0) / A / 1000)), broker $(((j1 - j0) / A / 1000))"
echo "world: $W"
