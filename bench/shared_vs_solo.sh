#!/bin/bash
# The cost of the Kafka transaction (shared_group) against the idempotent
# producer (solo), on the real broker, with the no-op plugin.
# usage: bench/shared_vs_solo.sh MODE(solo|shared) N: one reactor, N no-op
# plugin actions for each of 5 tenants, deploy --wait; prints the wall time
# of the wait (and, shared, how many transactions it took).
set -e
MODE=$1 N=$2 B=${PD_BUILD_DIR:-$(cd "$(dirname "$0")/.." && pwd)/build} D=${TMPDIR:-/tmp}/pd-bench-shared/$MODE
rm -rf $D; mkdir -p $D; RUN=bench$MODE$(date +%s)
cat > $D/pd.ini <<INI
[kafka]
bootstrap.servers = ${PD_BROKERS:-127.0.0.1:9092}
session.timeout.ms = 6000
[reactor]
group.id = $RUN
state = $D/state.db
workers = 4
plugins = $B/bench/bench_noop_plugin.so
shared_group = $([ $MODE = shared ] && echo true || echo false)
lease = 2s
[topics]
events = $RUN.events
results = $RUN.results
dlq = $RUN.dlq
partitions = 3
INI
PD_BENCH_NOOP_ACTIONS=$N $B/postdeploy-reactor -c $D/pd.ini > $D/log 2>&1 & P=$!
for i in $(seq 200); do grep -q "assigned\|joined\|reactor .*: " $D/log && break; sleep 0.1; done
sleep 2
s=$(date +%s%N)
$B/postdeploy deploy --auto --release 1 -t a -t b -t c -t d -t e --wait --timeout 300s -c $D/pd.ini > $D/out 2>&1 || echo "wait rc=$?"
e=$(date +%s%N)
echo "$MODE N=$N: $(( (e-s)/1000000 )) ms for $((5*N)) actions; $(tail -n 1 $D/out)"
kill -TERM $P; wait $P || true
grep "Kafka transactions:" $D/log || true
