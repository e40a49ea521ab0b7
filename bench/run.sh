#!/usr/bin/env bash
# bench/run.sh - every benchmark of docs/BENCHMARKS.md against the real
# broker, in one command, ending with one table.
#
#   bash bench/run.sh            full sizes, 3 runs each, medians (~8 min)
#   bash bench/run.sh --smoke    tiny sizes, 1 run: checks that every
#                                benchmark still works (< 3 min)
#
# Benchmark 10 (several reactors in one group) is bench/group.sh, which
# also runs on its own.
#
# Options: --runs N, --only "1 3 5" (a subset), --workers N (the reactor's,
# default 2), --out DIR (where every run's files go; default
# build-bench/bench-results/DATE), --keep (keep the state files too; the
# logs and figures are always kept).
#
# Each figure is compared with a floor measured in the same run, on the same
# machine: a bare librdkafka pipeline, a bare posix_spawn loop, a bare
# consumer. Each run makes a private world, as the integration tests do:
# topics, consumer group and state named after a unique run id.
#
# Exit status: 0 when every benchmark ran (a missed target is not a
# failure: the table says MISS); 1 when one could not run; 2 on bad usage.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${PD_BENCH_BUILD_DIR:-$SRC/build-bench}
BROKERS=${PD_BROKERS:-127.0.0.1:9092}
SMOKE=0
RUNS=
ONLY="1 2 3 4 5 6 7 8 9 10 11"
# 2 workers: the machine has 2 cores, and a worker's action is CPU work
# (spawn, SQLite, encoding), so more threads only take turns on them; the
# floors use the same number. Override with --workers.
WORKERS=2
KEEP=0
OUT=

usage() {
	sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case $1 in
	--smoke) SMOKE=1 ;;
	--runs) RUNS=$2; shift ;;
	--only) ONLY=$2; shift ;;
	--workers) WORKERS=$2; shift ;;
	--out) OUT=$2; shift ;;
	--keep) KEEP=1 ;;
	-h | --help) usage ;;
	*) echo "bench/run.sh: unknown option $1" >&2; usage ;;
	esac
	shift
done

if [ "$SMOKE" = 1 ]; then
	: "${RUNS:=1}"
	B1_TENANTS=20        # benchmark 1 and 2: tenants x 10 actions
	B3_EVENTS=100        # benchmark 3: events at B3_RATE/s, after B3_WARM
	B3_WARM=20
	B4_DEPLOYS=1         # benchmark 4: timed deploys per run
	B5_TENANTS=10        # benchmark 5: tenants x 10 actions x 10 events
	B6_TENANTS=100       # benchmark 6: tenants x 10 (tenant, action) states
	B6_HISTORY=20000     # ... and runs over a year, for the retention row
	B7_ACTIONS="100"     # benchmark 7: one tenant's actions, each size a run
	B8_TENANTS=10        # benchmark 8: tenants x B8_ACTIONS results
	B9_TENANTS=10000     # benchmark 9: tenants in one --tenants-file
	B11_RECORDS=2000     # benchmark 11: results records in the partition restored
else
	: "${RUNS:=3}"
	B1_TENANTS=1000
	B3_EVENTS=3000
	B3_WARM=200
	B4_DEPLOYS=3
	B5_TENANTS=10000
	B6_TENANTS=10000
	B6_HISTORY=1000000
	B7_ACTIONS="1000 10000"
	B8_TENANTS=1000
	B9_TENANTS=1000000
	B11_RECORDS=100000
fi
B1_ACTIONS=10
B3_RATE=100
B4_ACTIONS=5
B5_ACTIONS=10
B5_EVENTS=10
B6_ACTIONS=10
B8_ACTIONS=100

: "${OUT:=$BUILD/bench-results/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT"
BIN=$BUILD/bench
PIDS=()
# State files live apart, under a short path: the supervisor's socket sits
# in the state folder, and a Unix socket path has at most 108 bytes.
SROOT=$(mktemp -d /tmp/pdbench.XXXXXX)

say() { echo "== $*" >&2; }
die() { echo "bench/run.sh: $*" >&2; exit 1; }

cleanup() {
	local pid
	# Only jobs of this shell still running: a pid remembered from earlier
	# may since belong to another program (pids are reused within minutes).
	for pid in $(jobs -pr); do
		kill -KILL "$pid" 2>/dev/null || true
	done
	PIDS=()
	if [ "$KEEP" = 1 ]; then :; else rm -rf "$SROOT"; fi
}
trap cleanup EXIT

# ---- build (Release, with symbols for the profilers) ----------------------

say "building $BUILD (Release)"
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
	cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
		-DCMAKE_C_FLAGS=-g -DPD_TESTS=OFF -DPD_BENCH=ON \
		>"$OUT/cmake.log" 2>&1 || { cat "$OUT/cmake.log" >&2; die "cmake failed"; }
fi
cmake --build "$BUILD" -j "$(nproc)" >"$OUT/build.log" 2>&1 ||
	{ tail -n 40 "$OUT/build.log" >&2; die "build failed"; }
# What was measured: the commit, and whether the tree had changes then.
REV=$(git -C "$SRC" describe --always --dirty 2>/dev/null || echo unknown)
PLUGIN=$BIN/bench_noop_plugin.so
[ -f "$PLUGIN" ] || PLUGIN=

# ---- the broker must answer ------------------------------------------------

command -v kcat >/dev/null || die "kcat is not installed (run scripts/setup.sh)"
kcat -b "$BROKERS" -L -m 10 >/dev/null 2>&1 ||
	die "no Kafka broker answers on $BROKERS (start one: scripts/kafka.sh start)"

# ---- helpers ---------------------------------------------------------------

# A private world: prints its folder, which holds cfg.ini (unique topics,
# group and state). The [action] sections come from stdin.
world() { # world NAME
	local id w
	id=$(date +%s%N | tail -c 10)-$$-$RANDOM
	w=$OUT/$1
	mkdir -p "$w" "$SROOT/$1"
	chmod 700 "$SROOT/$1"
	cat >"$w/cfg.ini" <<INI
[kafka]
bootstrap.servers = $BROKERS
[reactor]
group.id = bench-$id
state = $SROOT/$1/state.db
workers = $WORKERS
shutdown_grace = 5s
[topics]
events = bench.$id.events
results = bench.$id.results
dlq = bench.$id.dlq
INI
	cat >>"$w/cfg.ini"
	echo "$w"
}

# The value of name= in a file of name=value lines.
val() { sed -n "s/^$1=//p" "$2" | tail -n 1; }

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }

# The state file of a world.
state_of() { sed -n 's/^state = //p' "$1/cfg.ini"; }

# Starts the reactor and waits until it says it runs, so that a reactor that
# cannot start fails the benchmark at once, with its log.
reactor_start() { # reactor_start WORLD [VAR=value...]: sets RPID
	local i
	env "${@:2}" "$BUILD/postdeploy-reactor" -c "$1/cfg.ini" >"$1/reactor.log" 2>&1 &
	RPID=$!
	PIDS+=("$RPID")
	for ((i = 0; i < 300; i++)); do
		grep -qs "worker(s), state" "$1/reactor.log" && return 0
		kill -0 "$RPID" 2>/dev/null || break
		sleep 0.1
	done
	echo "the reactor did not start; its log ($1/reactor.log) ends with:" >&2
	tail -n 5 "$1/reactor.log" >&2
	return 1
}

reactor_stop() { # reactor_stop WORLD
	kill -TERM "$RPID" 2>/dev/null || true
	wait "$RPID" || { echo "reactor exited $? (log: $1/reactor.log)" >&2; return 1; }
}

floor_start() { # floor_start WORLD ACTIONS: sets FPID
	"$BIN/bench_floor_kafka" -c "$1/cfg.ini" -a "$2" >"$1/floor.out" 2>"$1/floor.err" &
	FPID=$!
	PIDS+=("$FPID")
}

floor_stop() {
	kill -TERM "$FPID" 2>/dev/null || true
	wait "$FPID" || return 1
}

# CPU time (ns) of every thread of a process so far.
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%d\n", s }'; }
peak_rss_kb() { awk '/^VmHWM:/ { print $2 }' /proc/"$1"/status; }

# The plugin's or /bin/true's action sections, N of them.
noop_actions() { # noop_actions N
	local i
	if [ -n "$PLUGIN" ]; then
		echo "[reactor]"
		echo "plugins = $PLUGIN"
	else
		for ((i = 0; i < $1; i++)); do
			printf '[action bench.noop%d]\nrun = /bin/true\nauto = true\n' "$i"
		done
	fi
}
true_actions() { # true_actions N [PREFIX]
	local i
	for ((i = 0; i < $1; i++)); do
		printf '[action %s%d]\nrun = /bin/true\nauto = true\n' "${2:-bench.true}" "$i"
	done
}

# Figures are appended to $OUT/figures as "key value" lines, one per run.
fig() { echo "$1 $2" >>"$OUT/figures"; }

# ---- 1. in-process actions -------------------------------------------------

bench_1() { # bench_1 RUN
	local w f
	[ -n "$PLUGIN" ] || { echo "plugins not available yet" >"$OUT/b1.na"; return 0; }
	f=$(world "b1-$1-floor" </dev/null)
	floor_start "$f" "$B1_ACTIONS"
	# The floor's burst lasts ~0.1 s, so one is mostly noise: three bursts
	# on the same floor, each a figure; the reactor gets the same.
	for k in 1 2 3; do
		"$BIN/bench_load" -c "$f/cfg.ini" -m burst -n "$B1_TENANTS" --raw \
			-a "$B1_ACTIONS" -p "f${k}t" >"$f/load-$k.out"
		fig b1.floor "$(val rate "$f/load-$k.out")"
	done
	floor_stop
	w=$(world "b1-$1" < <(noop_actions "$B1_ACTIONS"))
	reactor_start "$w" PD_BENCH_NOOP_ACTIONS="$B1_ACTIONS"
	for k in 1 2 3; do
		"$BIN/bench_load" -c "$w/cfg.ini" -m burst -n "$B1_TENANTS" \
			-p "r${k}t" >"$w/load-$k.out"
		[ "$(val actions "$w/load-$k.out")" = $((B1_TENANTS * B1_ACTIONS)) ] ||
			{ echo "benchmark 1: not every action ran" >&2; return 1; }
		fig b1.rate "$(val rate "$w/load-$k.out")"
	done
	reactor_stop "$w"
}

# ---- 2. command actions ----------------------------------------------------

bench_2() {
	local w n=$((B1_TENANTS * B1_ACTIONS))
	"$BIN/bench_floor_spawn" -w "$WORKERS" -n "$n" >"$OUT/b2-$1-floor.out"
	w=$(world "b2-$1" < <(true_actions "$B1_ACTIONS"))
	reactor_start "$w"
	"$BIN/bench_load" -c "$w/cfg.ini" -m burst -n "$B1_TENANTS" >"$w/load.out"
	reactor_stop "$w"
	[ "$(val actions "$w/load.out")" = "$n" ] ||
		{ echo "benchmark 2: not every action ran" >&2; return 1; }
	fig b2.rate "$(val rate "$w/load.out")"
	fig b2.floor "$(val rate "$OUT/b2-$1-floor.out")"
}

# ---- 3. latency at a steady rate -------------------------------------------

bench_3() {
	local w f k
	f=$(world "b3-$1-floor" </dev/null)
	floor_start "$f" 1
	"$BIN/bench_load" -c "$f/cfg.ini" -m steady -r "$B3_RATE" -n "$B3_EVENTS" \
		-w "$B3_WARM" -p lat --raw -a 1 -o "$f/trace.txt" >"$f/load.out"
	floor_stop
	w=$(world "b3-$1" < <(true_actions 1 bench.lat))
	reactor_start "$w"
	"$BIN/bench_load" -c "$w/cfg.ini" -m steady -r "$B3_RATE" -n "$B3_EVENTS" \
		-w "$B3_WARM" -p lat -o "$w/trace.txt" >"$w/load.out"
	reactor_stop "$w"
	for k in start_p50_ms start_p99_ms start_max_ms finish_p50_ms finish_p99_ms \
		finish_max_ms pickup_p50_ms pickup_p99_ms sent_rate; do
		fig "b3.$k" "$(val "$k" "$w/load.out")"
	done
	for k in start_p50_ms start_p99_ms start_max_ms; do
		fig "b3.floor.$k" "$(val "$k" "$f/load.out")"
	done
}

# ---- 4. CI's deploy --auto --wait --------------------------------------------

bench_4() {
	local w f i before after
	f=$(world "b4-$1-floor" </dev/null)
	floor_start "$f" "$B4_ACTIONS"
	for ((i = 0; i <= B4_DEPLOYS; i++)); do
		"$BIN/bench_timeit" -o "$f/once-$i.log" -- "$BIN/bench_load" -c "$f/cfg.ini" \
			-m once --raw -a "$B4_ACTIONS" -t "ci$i" -T 60 >"$f/time-$i.out"
		# The first one pays for the group forming: not counted.
		[ "$i" = 0 ] || fig b4.floor "$(val wall_ms "$f/time-$i.out")"
	done
	floor_stop
	w=$(world "b4-$1" < <(noop_actions "$B4_ACTIONS"))
	reactor_start "$w" PD_BENCH_NOOP_ACTIONS="$B4_ACTIONS"
	for ((i = 0; i <= B4_DEPLOYS; i++)); do
		before=$(cpu_ns "$RPID")
		"$BIN/bench_timeit" -o "$w/deploy-$i.log" -- "$BUILD/postdeploy" deploy --auto \
			--release 1.0.0 --tenant "ci$i" --wait --timeout 120s -c "$w/cfg.ini" \
			>"$w/time-$i.out" || { cat "$w/deploy-$i.log" >&2; return 1; }
		after=$(cpu_ns "$RPID")
		grep -q "^$B4_ACTIONS action(s) finished, 0 failed" "$w/deploy-$i.log" ||
			{ echo "benchmark 4: unexpected deploy output" >&2; cat "$w/deploy-$i.log" >&2; return 1; }
		[ "$i" = 0 ] && continue
		fig b4.wall "$(val wall_ms "$w/time-$i.out")"
		fig b4.cli_cpu "$(awk -v u="$(val user_ms "$w/time-$i.out")" \
			-v s="$(val sys_ms "$w/time-$i.out")" 'BEGIN { printf "%.1f", u + s }')"
		fig b4.reactor_cpu "$(awk -v a="$before" -v b="$after" 'BEGIN { printf "%.1f", (b - a) / 1e6 }')"
	done
	reactor_stop "$w"
}

# ---- 5. report over 1,000,000 records ----------------------------------------

bench_5() {
	local w=$OUT/b5 i
	# Filling is slow next to reading: one topic serves every run.
	if [ ! -f "$w/fill.out" ]; then
		w=$(world b5 </dev/null)
		"$BIN/bench_fill_results" -c "$w/cfg.ini" -n "$B5_TENANTS" \
			-a "$B5_ACTIONS" -e "$B5_EVENTS" >"$w/fill.tmp"
		mv "$w/fill.tmp" "$w/fill.out"
	fi
	"$BIN/bench_timeit" -- "$BIN/bench_load" -c "$w/cfg.ini" -m drain >"$w/floor-$1.out"
	# The report's peak RSS as /usr/bin/time -v prints it ("Maximum
	# resident set size"): bench_timeit reads the same wait4() rusage.
	"$BIN/bench_timeit" -o "$w/report-$1.json" -- "$BUILD/postdeploy" report \
		--format json --timeout 600s -c "$w/cfg.ini" >"$w/report-$1.out" ||
		{ echo "benchmark 5: report failed" >&2; return 1; }
	[ "$(grep -c '"tenant"' "$w/report-$1.json")" = $((B5_TENANTS * B5_ACTIONS)) ] ||
		{ echo "benchmark 5: the report does not have every row" >&2; return 1; }
	fig b5.wall "$(val wall_ms "$w/report-$1.out")"
	fig b5.rss "$(val maxrss_kb "$w/report-$1.out")"
	fig b5.floor.wall "$(val wall_ms "$w/floor-$1.out")"
	fig b5.floor.rss "$(val maxrss_kb "$w/floor-$1.out")"
	fig b5.records "$(val records "$w/fill.out")"
}

# ---- 6. footprint over 100,000 states ---------------------------------------

bench_6() {
	local w f db
	w=$(world "b6-$1" < <(true_actions "$B6_ACTIONS" bench.a; true_actions 1 bench.new))
	"$BIN/bench_seed_store" -s "$(state_of "$w")" -n "$B6_TENANTS" \
		-a "$B6_ACTIONS" -f "$w/floor.db" >"$w/seed.out"
	# Every tenant deploys: the plan reads its 10 states (all done) and
	# runs bench.new, so the store grows to 110% while the reactor works.
	reactor_start "$w"
	"$BIN/bench_load" -c "$w/cfg.ini" -m burst -n "$B6_TENANTS" >"$w/load.out"
	fig b6.rss "$(peak_rss_kb "$RPID")"
	reactor_stop "$w"
	db=$(state_of "$w")
	fig b6.db "$(($(stat -c %s "$db") + $(stat -c %s "$db-wal" 2>/dev/null || echo 0)))"
	fig b6.floor.db "$(stat -c %s "$w/floor.db")"
	# The floor's RSS: the bare pipeline, its own group, the same events.
	sed "s/^group.id = .*/&-floor/; s/^results = .*/&-floor/" "$w/cfg.ini" >"$w/floor.ini"
	"$BIN/bench_floor_kafka" -c "$w/floor.ini" -a 1 -n $((B6_TENANTS + 1)) >"$w/floor.out"
	fig b6.floor.rss "$(val peak_rss_kb "$w/floor.out")"
	# Retention: a year of runs, keep_runs = 90d against 0, written and
	# pruned as the reactor would. No broker involved, same every run:
	# measured once.
	if [ "$1" = 1 ]; then
		for k in 0 90; do
			"$BIN/bench_seed_store" -s "$w/history-$k.db" -n 1000 -a 10 \
				-H "$B6_HISTORY" -d 365 -k "$k" >"$w/history-$k.out"
		done
		fig b6.history.on "$(val db_bytes "$w/history-90.out")"
		fig b6.history.off "$(val db_bytes "$w/history-0.out")"
	fi
}

# ---- 7. one tenant, many actions: deploy --auto --wait ------------------------

# The reactor's own span for TENANT: its first action's started_at to its
# last one's finished_at, in ms, from the report (millisecond stamps).
reactor_span_ms() { # reactor_span_ms WORLD TENANT
	"$BUILD/postdeploy" report --format json --tenant "$2" -c "$1/cfg.ini" |
		python3 -c 'import json, sys, datetime
ms = lambda s: datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp() * 1000
rows = json.load(sys.stdin)
print("%.0f" % (max(ms(r["finished_at"]) for r in rows) - min(ms(r["started_at"]) for r in rows)))'
}

bench_7() {
	local w n
	[ -n "$PLUGIN" ] || { echo "plugins not available yet" >"$OUT/b7.na"; return 0; }
	for n in $B7_ACTIONS; do
		w=$(world "b7-$1-$n" < <(noop_actions "$n"; echo "state_sync = true"))
		reactor_start "$w" PD_BENCH_NOOP_ACTIONS="$n"
		# The first deploy pays for the group forming and the clients
		# connecting: one action, not counted.
		"$BUILD/postdeploy" deploy --one bench.noop0 --release 1.0.0 --tenant warm \
			--wait --timeout 120s -c "$w/cfg.ini" >"$w/warm.log" ||
			{ cat "$w/warm.log" >&2; return 1; }
		"$BIN/bench_timeit" -o "$w/deploy.log" -- "$BUILD/postdeploy" deploy --auto \
			--release 1.0.0 --tenant t1 --wait --timeout 120s -c "$w/cfg.ini" \
			>"$w/time.out" || { cat "$w/deploy.log" >&2; return 1; }
		grep -q "^$n action(s) finished, 0 failed" "$w/deploy.log" ||
			{ echo "benchmark 7: unexpected deploy output" >&2; tail -n 3 "$w/deploy.log" >&2; return 1; }
		reactor_stop "$w"
		fig "b7.wall.$n" "$(val wall_ms "$w/time.out")"
		fig "b7.cli_cpu.$n" "$(awk -v u="$(val user_ms "$w/time.out")" \
			-v s="$(val sys_ms "$w/time.out")" 'BEGIN { printf "%.1f", u + s }')"
		fig "b7.span.$n" "$(reactor_span_ms "$w" t1)"
		# The floor: a bare consumer, the CLI's settings, no decoding,
		# reading the same records (the whole topic: the deploy's, the
		# warm-up's three and the registry) from the same topic.
		"$BIN/bench_timeit" -o "$w/drain.out" -- "$BIN/bench_load" -c "$w/cfg.ini" \
			-m drain >"$w/floor.out"
		fig "b7.floor.$n" "$(val wall_ms "$w/floor.out")"
		fig "b7.records.$n" "$(val records "$w/drain.out")"
	done
}

# ---- 8. report --tenant T over 1,000 tenants x 100 actions --------------------

bench_8() {
	local w=$OUT/b8 tenant topic parts part n
	# One fill serves every run, as in benchmark 5. The records are written
	# as today's reactors write them (-p): each tenant's on its events'
	# partition, marked co-partitioned, so the report reads T's partition
	# and partition 0 (the registry) to their end and the others to their
	# first record.
	if [ ! -f "$w/fill.out" ]; then
		w=$(world b8 </dev/null)
		"$BIN/bench_fill_results" -c "$w/cfg.ini" -n "$B8_TENANTS" \
			-a "$B8_ACTIONS" -e 2 -p >"$w/fill.tmp"
		mv "$w/fill.tmp" "$w/fill.out"
	fi
	topic=$(sed -n 's/^results = //p' "$w/cfg.ini")
	parts=$(kcat -b "$BROKERS" -L -t "$topic" 2>/dev/null |
		sed -n 's/.* with \([0-9]*\) partitions.*/\1/p')
	# A tenant in the middle of the fill's names (t000000, t000001, ...)
	# whose partition (CRC-32 of the tenant, librdkafka's default
	# partitioner) is not 0: the report then reads two partitions in full,
	# its and the registry's.
	read -r tenant part < <(python3 -c '
import sys, zlib
n, parts = int(sys.argv[1]), int(sys.argv[2])
for i in list(range(n // 2, n)) + list(range(n // 2)):
    t = "t%06d" % i
    p = zlib.crc32(t.encode()) % parts
    if p or parts == 1 or i == n // 2 - 1:
        print(t, p)
        break' "$B8_TENANTS" "$parts")
	"$BIN/bench_timeit" -- "$BIN/bench_load" -c "$w/cfg.ini" -m drain >"$w/floor-$1.out"
	# The floor of what the report must read: a bare consumer (kcat, the
	# CLI's fetch settings) reading T's partition only, to its last record
	# (-c: not waiting at the end for an empty fetch, fetch.wait.max.ms).
	n=$(kcat -C -b "$BROKERS" -t "$topic" -p "$part" -o beginning -e -q \
		-f 'x\n' 2>/dev/null | wc -l | tr -d ' ')
	"$BIN/bench_timeit" -o /dev/null -- kcat -C -b "$BROKERS" -t "$topic" -p "$part" \
		-o beginning -c "$n" -q -f '' -X fetch.max.bytes=104857600 \
		-X max.partition.fetch.bytes=262144 -X queued.min.messages=10000 \
		-X queued.max.messages.kbytes=16384 >"$w/floor-part-$1.out"
	"$BIN/bench_timeit" -o "$w/report-$1.json" -- "$BUILD/postdeploy" report \
		--tenant "$tenant" --format json \
		-c "$w/cfg.ini" >"$w/report-$1.out" ||
		{ echo "benchmark 8: report failed" >&2; return 1; }
	[ "$(grep -c '"tenant"' "$w/report-$1.json")" = "$B8_ACTIONS" ] ||
		{ echo "benchmark 8: the report does not have the tenant's $B8_ACTIONS rows" >&2; return 1; }
	fig b8.wall "$(val wall_ms "$w/report-$1.out")"
	fig b8.floor "$(val wall_ms "$w/floor-$1.out")"
	fig b8.floor_part "$(val wall_ms "$w/floor-part-$1.out")"
	fig b8.records "$(val records "$w/fill.out")"
	fig b8.part_records "$n"
}

# ---- 9. deploy --tenants-file of 1,000,000 lines ------------------------------

bench_9() {
	local w
	w=$(world "b9-$1" </dev/null)
	seq -f 'tenant-%07.0f' 1 "$B9_TENANTS" >"$w/tenants.txt"
	# The topics exist before either publishes: made by a first deploy.
	"$BUILD/postdeploy" deploy --auto --release 1.0.0 --tenant first \
		-c "$w/cfg.ini" >/dev/null
	"$BIN/bench_timeit" -o "$w/deploy.log" -- "$BUILD/postdeploy" deploy --auto \
		--release 1.0.0 --tenants-file "$w/tenants.txt" -c "$w/cfg.ini" >"$w/time.out" ||
		{ tail -n 3 "$w/deploy.log" >&2; return 1; }
	[ "$(grep -c '^published ' "$w/deploy.log")" = "$B9_TENANTS" ] ||
		{ echo "benchmark 9: not every tenant published" >&2; return 1; }
	fig b9.wall "$(val wall_ms "$w/time.out")"
	fig b9.rss "$(val maxrss_kb "$w/time.out")"
	# The floor: kcat (bare librdkafka) publishing the same lines, keyed
	# by tenant, to the same topic.
	sed 's/.*/&:&/' "$w/tenants.txt" >"$w/keyed.txt"
	"$BIN/bench_timeit" -- kcat -P -b "$BROKERS" -t "$(sed -n 's/^events = //p' "$w/cfg.ini")" \
		-K: -l "$w/keyed.txt" >"$w/floor.out"
	fig b9.floor "$(val wall_ms "$w/floor.out")"
}

# ---- 10. several reactors in one group (bench/group.sh) ---------------------

bench_10() {
	local o=$OUT/b10-$1
	mkdir -p "$o"
	PD_BENCH_BUILD_DIR=$BUILD PD_BROKERS=$BROKERS bash "$SRC/bench/group.sh" \
		--build "$BUILD" --out "$o" $([ "$SMOKE" = 1 ] && echo --smoke) >"$o/group.out" 2>&1 ||
		{ tail -n 5 "$o/group.out" >&2; return 1; }
	grep -E '^(b10\.|group_keys)' "$o/figures" >>"$OUT/figures"
}

# ---- 11. restore of a results partition (shared_group) ----------------------

bench_11() {
	local w
	w=$(world "b11-$1" </dev/null)
	# Fills a one-partition results topic of its own with B11_RECORDS
	# tenant/action records, reads it with a bare consumer (the floor),
	# restores it into a new store, then again from the checkpoint.
	"$BIN/bench_restore" -c "$w/cfg.ini" -d "$SROOT/b11-$1" \
		-n "$B11_RECORDS" >"$w/restore.out" ||
		{ echo "benchmark 11: bench_restore failed" >&2; return 1; }
	[ "$(val applied "$w/restore.out")" = "$B11_RECORDS" ] ||
		{ echo "benchmark 11: not every record was applied" >&2; return 1; }
	fig b11.restore "$(val restore_ms "$w/restore.out")"
	fig b11.floor "$(val floor_ms "$w/restore.out")"
	fig b11.again "$(val again_ms "$w/restore.out")"
	fig b11.records "$(val records "$w/restore.out")"
}

# ---- run them ---------------------------------------------------------------

FAILED=()
: >"$OUT/figures"
for b in $ONLY; do
	for ((run = 1; run <= RUNS; run++)); do
		say "benchmark $b, run $run of $RUNS"
		set +e
		(set -e; "bench_$b" "$run")
		rc=$?
		set -e
		if [ "$rc" != 0 ]; then
			FAILED+=("$b")
			echo "benchmark $b did not run (files: $OUT)" >&2
			break
		fi
	done
done
# Ends what is left (nothing, when every benchmark ran) and, without
# --keep, removes the state files.
cleanup

# ---- the table --------------------------------------------------------------

med() { awk -v k="$1" '$1 == k { print $2 }' "$OUT/figures" | median; }
failed() { [[ " ${FAILED[*]:-} " == *" $1 "* ]]; }
# row NUM WHAT FIGURE FLOOR RATIO TARGET VERDICT
row() { printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$@"; }
verdict() { awk -v x="$1" -v op="$2" -v t="$3" 'BEGIN {
	if (x == "") { print "?"; exit }
	ok = op == ">=" ? x + 0 >= t + 0 : x + 0 <= t + 0
	print ok ? "PASS" : "MISS" }'; }
fmt() { awk -v x="$1" -v f="$2" 'BEGIN { if (x == "") print "-"; else printf f, x }'; }
pct() { awk -v r="$1" 'BEGIN { if (r == "" || r == "-") print "-"; else printf "%.1f%%", r * 100 }'; }
ratio() { awk -v a="$1" -v b="$2" -v f="$3" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf f, a / b }'; }

{
	echo "| # | benchmark | figure | floor | ratio | target | verdict |"
	echo "|---|---|---|---|---|---|---|"
	if failed 1; then row 1 "in-process actions/s" "did not run" - - "≥ 50% of floor" FAIL
	elif [ -f "$OUT/b1.na" ]; then row 1 "in-process actions/s" "n/a (plugins not available yet)" - - "≥ 50% of floor" n/a
	elif [[ " $ONLY " == *" 1 "* ]]; then
		x=$(med b1.rate) fl=$(med b1.floor) r=$(ratio "$(med b1.rate)" "$(med b1.floor)" %.3f)
		row 1 "in-process actions/s ($B1_TENANTS tenants × $B1_ACTIONS no-op plugin actions)" \
			"$(fmt "$x" %.0f)/s" "$(fmt "$fl" %.0f)/s bare librdkafka" "$(pct "$r")" \
			"≥ 50%" "$(verdict "$r" ">=" 0.5)"
	fi
	if failed 2; then row 2 "command actions/s" "did not run" - - "≥ 80% of floor" FAIL
	elif [[ " $ONLY " == *" 2 "* ]]; then
		x=$(med b2.rate) fl=$(med b2.floor) r=$(ratio "$(med b2.rate)" "$(med b2.floor)" %.3f)
		row 2 "command actions/s ($B1_TENANTS tenants × $B1_ACTIONS /bin/true, $WORKERS workers)" \
			"$(fmt "$x" %.0f)/s" "$(fmt "$fl" %.0f)/s bare spawn+waitpid" "$(pct "$r")" \
			"≥ 80%" "$(verdict "$r" ">=" 0.8)"
	fi
	if failed 3; then row 3 "latency at $B3_RATE/s" "did not run" - - "p99 start ≤ 10 ms" FAIL
	elif [[ " $ONLY " == *" 3 "* ]]; then
		x=$(med b3.start_p99_ms) fl=$(med b3.floor.start_p99_ms)
		row 3a "publish → action.started p99 ($B3_EVENTS events at $B3_RATE/s, 1 /bin/true each)" \
			"$(fmt "$x" '%.1f ms')" "$(fmt "$fl" '%.1f ms') bare pipeline" "$(ratio "$x" "$fl" '%.1f×')" \
			"≤ 10 ms" "$(verdict "$x" "<=" 10)"
		row 3b "publish → started p50 / max" "$(fmt "$(med b3.start_p50_ms)" %.1f) / $(fmt "$(med b3.start_max_ms)" '%.1f ms')" \
			"$(fmt "$(med b3.floor.start_p50_ms)" %.1f) / $(fmt "$(med b3.floor.start_max_ms)" '%.1f ms')" - - -
		row 3c "publish → action.finished p50 / p99 / max" \
			"$(fmt "$(med b3.finish_p50_ms)" %.1f) / $(fmt "$(med b3.finish_p99_ms)" %.1f) / $(fmt "$(med b3.finish_max_ms)" '%.1f ms')" - - - -
		row 3d "publish → reactor's started_at p50 / p99 (wall clock, ms resolution)" \
			"$(fmt "$(med b3.pickup_p50_ms)" %.0f) / $(fmt "$(med b3.pickup_p99_ms)" '%.0f ms')" - - - -
	fi
	if failed 4; then row 4 "deploy --auto --wait" "did not run" - - "≤ 1.5 s" FAIL
	elif [[ " $ONLY " == *" 4 "* ]]; then
		x=$(med b4.wall) fl=$(med b4.floor)
		own=$(awk -v a="$(med b4.cli_cpu)" -v b="$(med b4.reactor_cpu)" 'BEGIN { printf "%.1f", a + b }')
		row 4a "\`deploy --auto --wait\`, 1 tenant × $B4_ACTIONS no-op actions, wall" \
			"$(fmt "$x" '%.0f ms')" "$(fmt "$fl" '%.0f ms') bare client" "$(ratio "$x" "$fl" '%.1f×')" \
			"≤ 1500 ms" "$(verdict "$x" "<=" 1500)"
		row 4b "… of which postdeploy's own work (CLI CPU + reactor CPU)" \
			"$(fmt "$own" '%.0f ms') ($(fmt "$(med b4.cli_cpu)" %.0f) + $(fmt "$(med b4.reactor_cpu)" %.0f))" - - \
			"≤ 100 ms" "$(verdict "$own" "<=" 100)"
		row 4c "… the rest: waiting on the broker (round trips, polls, linger)" \
			"$(awk -v w="$x" -v o="$own" 'BEGIN { printf "%.0f ms", w - o }')" - - - -
	fi
	if failed 5; then row 5 "report" "did not run" - - "≤ 3 s, ≤ 64 MB" FAIL
	elif [[ " $ONLY " == *" 5 "* ]]; then
		x=$(med b5.wall) fl=$(med b5.floor.wall)
		row 5a "\`report --format json\` over $(med b5.records) records, wall" \
			"$(fmt "$x" '%.0f ms')" "$(fmt "$fl" '%.0f ms') bare consumer" "$(ratio "$x" "$fl" '%.1f×')" \
			"≤ 3000 ms" "$(verdict "$x" "<=" 3000)"
		x=$(med b5.rss) fl=$(med b5.floor.rss)
		row 5b "… peak RSS" "$(fmt "$x" '%.0f KiB' | awk '{ printf "%.1f MiB", $1 / 1024 }')" \
			"$(awk -v v="$fl" 'BEGIN { printf "%.1f MiB", v / 1024 }') bare consumer" "$(ratio "$x" "$fl" '%.1f×')" \
			"≤ 64 MiB" "$(verdict "$x" "<=" 65536)"
	fi
	if failed 6; then row 6 "footprint" "did not run" - - "RSS ≤ 32 MB" FAIL
	elif [[ " $ONLY " == *" 6 "* ]]; then
		x=$(med b6.rss) fl=$(med b6.floor.rss)
		row 6a "reactor peak RSS over $((B6_TENANTS * B6_ACTIONS)) states ($B6_TENANTS deploys running 1 /bin/true each)" \
			"$(awk -v v="$x" 'BEGIN { printf "%.1f MiB", v / 1024 }')" \
			"$(awk -v v="$fl" 'BEGIN { printf "%.1f MiB", v / 1024 }') bare pipeline" "$(ratio "$x" "$fl" '%.1f×')" \
			"≤ 32 MiB" "$(verdict "$x" "<=" 32768)"
		x=$(med b6.db) fl=$(med b6.floor.db)
		row 6b "SQLite file (+ WAL) after that run" "$(awk -v v="$x" 'BEGIN { printf "%.1f MiB", v / 1048576 }')" \
			"$(awk -v v="$fl" 'BEGIN { printf "%.1f MiB", v / 1048576 }') (tenant, action, succeeded) table" \
			"$(ratio "$x" "$fl" '%.1f×')" - -
		x=$(med b6.history.on) fl=$(med b6.history.off)
		row 6c "SQLite file after $B6_HISTORY runs over a year, \`keep_runs = 90d\`" \
			"$(awk -v v="$x" 'BEGIN { printf "%.1f MiB", v / 1048576 }')" \
			"$(awk -v v="$fl" 'BEGIN { printf "%.1f MiB", v / 1048576 }') with \`keep_runs = 0\`" \
			"$(ratio "$x" "$fl" '%.2f×')" - -
	fi
	if failed 7; then row 7 "deploy --wait, one tenant" "did not run" - - "≤ 150 ms" FAIL
	elif [ -f "$OUT/b7.na" ]; then row 7 "deploy --wait, one tenant" "n/a (plugins not available yet)" - - "≤ 150 ms" n/a
	elif [[ " $ONLY " == *" 7 "* ]]; then
		for n in $B7_ACTIONS; do
			x=$(med "b7.wall.$n") fl=$(med "b7.floor.$n")
			row "7 ($n)" "\`deploy --auto --wait\`, 1 tenant × $n no-op actions, \`state_sync = true\`, wall" \
				"$(fmt "$x" '%.0f ms')" "$(fmt "$fl" '%.0f ms') bare consumer, $(med "b7.records.$n") records" \
				"$(ratio "$x" "$fl" '%.1f×')" "≤ $((n * 150 / 1000)) ms" "$(verdict "$x" "<=" $((n * 150 / 1000)))"
			row "" "… the reactor's span (first started → last finished); the CLI's CPU" \
				"$(fmt "$(med "b7.span.$n")" '%.0f ms'); $(fmt "$(med "b7.cli_cpu.$n")" '%.0f ms')" - - - -
		done
	fi
	if failed 8; then row 8 "report --tenant" "did not run" - - "≤ 100 ms" FAIL
	elif [[ " $ONLY " == *" 8 "* ]]; then
		x=$(med b8.wall) fl=$(med b8.floor_part)
		row 8 "\`report --tenant T --format json\` over $(med b8.records) records ($B8_TENANTS tenants × $B8_ACTIONS actions, co-partitioned as today's reactors write them), wall" \
			"$(fmt "$x" '%.0f ms')" "$(fmt "$fl" '%.0f ms') bare consumer (kcat), T's partition only ($(med b8.part_records) records; the report also reads partition 0's, the registry's)" "$(ratio "$x" "$fl" '%.1f×')" \
			"≤ 100 ms" "$(verdict "$x" "<=" 100)"
		row "" "… a bare consumer reading the whole topic (bench_load -m drain)" "$(fmt "$(med b8.floor)" '%.0f ms')" - - - -
	fi
	if failed 9; then row 9 "deploy --tenants-file" "did not run" - - "seconds" FAIL
	elif [[ " $ONLY " == *" 9 "* ]]; then
		x=$(med b9.wall) fl=$(med b9.floor)
		row 9 "\`deploy --auto --tenants-file\` of $B9_TENANTS tenants (no --wait), wall; peak RSS $(awk -v v="$(med b9.rss)" 'BEGIN { printf "%.0f MiB", v / 1024 }')" \
			"$(fmt "$x" '%.0f ms')" "$(fmt "$fl" '%.0f ms') kcat -P, same keys" "$(ratio "$x" "$fl" '%.1f×')" \
			"≤ 10000 ms" "$(verdict "$x" "<=" 10000)"
	fi
	if failed 10; then row 10 "reactors in one group" "did not run" - - "≥ 2.7× at 3" FAIL
	elif [[ " $ONLY " == *" 10 "* ]]; then
		keys=$([ "$(med group_keys)" = 1 ] && echo "shared_group" || echo "without shared_group: this build does not know it")
		top=$(awk '$1 ~ /^b10\.wall\./ { sub("b10.wall.", "", $1); print $1 }' "$OUT/figures" | sort -n | tail -n 1)
		walls=$(for n in $(awk '$1 ~ /^b10\.wall\./ { sub("b10.wall.", "", $1); print $1 }' "$OUT/figures" | sort -nu); do
			printf '%s: %s ms; ' "$n" "$(med "b10.wall.$n")"; done)
		x=$(med "b10.speedup.$top")
		row 10a "reactors in one group ($keys), $(med b10.tenants) tenants × 2 \`sleep 0.2\`, 4 workers each: wall to all finished, by reactors" \
			"${walls%; }" "1 reactor" "$(fmt "$x" '%.2f×') at $top" "≥ 2.7× at 3" \
			"$([ "$top" = 3 ] && verdict "$x" ">=" 2.7 || echo -)"
		row 10b "publish → action.started p50 / p99 / max, 2 reactors while a 3rd joins" \
			"$(fmt "$(med b10.join.start_p50_ms)" %.1f) / $(fmt "$(med b10.join.start_p99_ms)" %.1f) / $(fmt "$(med b10.join.start_max_ms)" '%.1f ms')" \
			"$(fmt "$(med b10.steady.start_p50_ms)" %.1f) / $(fmt "$(med b10.steady.start_p99_ms)" %.1f) / $(fmt "$(med b10.steady.start_max_ms)" '%.1f ms') no join" \
			- - -
	fi
	if failed 11; then row 11 "restore of a results partition" "did not run" - - - FAIL
	elif [[ " $ONLY " == *" 11 "* ]]; then
		x=$(med b11.restore) fl=$(med b11.floor)
		row 11a "restore of one results partition holding $(med b11.records) tenant/action records (shared_group), wall" \
			"$(fmt "$x" '%.0f ms')" "$(fmt "$fl" '%.0f ms') bare consumer, same partition" "$(ratio "$x" "$fl" '%.1f×')" - -
		row 11b "… again from its checkpoint, nothing new" "$(fmt "$(med b11.again)" '%.0f ms')" - - - -
	fi
} >"$OUT/table.md"

{
	echo
	echo "postdeploy benchmarks — $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores," \
		"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)," \
		"$(awk '/^MemTotal:/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)," \
		"$([ "$SMOKE" = 1 ] && echo "SMOKE sizes" || echo "full sizes"), median of $RUNS run(s), $WORKERS workers," \
		"source $REV (built $(date -u -r "$BUILD/postdeploy-reactor" +%H:%M))"
	echo
	cat "$OUT/table.md"
	echo
	echo "files: $OUT"
}
[ "$KEEP" = 1 ] || find "$OUT" -name '*.db' -o -name '*.db-wal' -o -name '*.db-shm' |
	xargs -r rm -f
[ "$KEEP" = 1 ] && echo "state files kept in $SROOT" >&2
if [ "${#FAILED[@]}" -gt 0 ]; then
	echo "benchmark(s) that did not run: ${FAILED[*]}" >&2
	exit 1
fi
