#!/usr/bin/env bash
# bench/group.sh - benchmark 10: several reactors in one consumer group
# (issue 11), I/O-bound actions (0.2 s sleeps), `workers = 4` a reactor.
#
#   bash bench/group.sh [--smoke] [--build DIR] [--out DIR] [--reactors "1 2 3"]
#
# a) scale-out: TENANTS x 2 actions (one event a tenant, burst) with 1, 2
#    and 3 reactors already joined: the wall time from the first publish to
#    the last action.finished (bench_load burst), and the speed-up against
#    one reactor (target at 3: >= 2.7x).
# b) the pause a rebalance causes: events at a steady rate (1 action each)
#    on 2 reactors, and the same while a third joins halfway: publish ->
#    action.started p50 / p99 / max (bench_load steady).
#
# Each reactor has its own state folder, HOME and config; the group's keys
# (`shared_group = true`, `lease = 2s`) are written when the reactor knows
# them (its --help lists shared_group), or as PD_GROUP_KEYS=0|1 says: a
# reactor without issue 11's work refuses them, and is measured without. The tenants' names are
# chosen so that range assignment gives every reactor the same number of
# tenants for each reactor count measured (the CLI's partitioner is
# librdkafka's consistent_random, CRC-32 of the key): the figure measures
# the group, not the luck of the hash.
#
# Figures go to OUT/figures as "name value" lines, and are printed; run.sh
# runs this as benchmark 10 and puts them in its table.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${PD_BENCH_BUILD_DIR:-$SRC/build-bench}
BROKERS=${PD_BROKERS:-127.0.0.1:9092}
SMOKE=0
OUT=
REACTORS=
while [ $# -gt 0 ]; do
	case $1 in
	--smoke) SMOKE=1 ;;
	--build) BUILD=$2; shift ;;
	--out) OUT=$2; shift ;;
	--reactors) REACTORS=$2; shift ;;
	-h | --help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
	*) echo "bench/group.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
# Smoke (CI): does it still work, in ~20 s: 1 and 3 reactors, and only the
# run with a join.
if [ "$SMOKE" = 1 ]; then
	TENANTS=12 STEADY_EVENTS=40 STEADY_RATE=10
	: "${REACTORS:=1 3}"
else
	TENANTS=48 STEADY_EVENTS=300 STEADY_RATE=20
	: "${REACTORS:=1 2 3}"
fi
PARTITIONS=12
WORKERS=4
: "${OUT:=$BUILD/bench-results/group-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT"
: >"$OUT/figures"
# State folders under a short path: the supervisor's socket lives there.
SROOT=$(mktemp -d /tmp/pdgroup.XXXXXX)
PIDS=()

cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
	for pid in $(pgrep -f -- "--supervisor $SROOT/" 2>/dev/null || true); do
		kill -KILL "$pid" 2>/dev/null || true
	done
	rm -rf "$SROOT"
}
trap cleanup EXIT
die() { echo "bench/group.sh: $*" >&2; exit 1; }
fig() { echo "$1 $2" >>"$OUT/figures"; }
val() { sed -n "s/^$1=//p" "$2" | tail -n 1; }
for b in postdeploy-reactor postdeploy bench/bench_load; do
	[ -x "$BUILD/$b" ] || die "no $BUILD/$b (build with -DPD_BENCH=ON, as bench/run.sh does)"
done
# Unset: the group's keys when this build's reactor knows them. A reactor
# without issue 11's work is measured without them, and the output says so.
if [ -z "${PD_GROUP_KEYS:-}" ]; then
	PD_GROUP_KEYS=0
	if "$BUILD/postdeploy-reactor" --help 2>&1 | grep '^  shared_group ' >/dev/null; then
		PD_GROUP_KEYS=1
	fi
fi
echo "group_keys $PD_GROUP_KEYS" >>"$OUT/figures"
fig b10.tenants "$TENANTS"

# A prefix P such that the tenants P000001..P<n> spread evenly over the
# reactors' partition ranges, for every reactor count measured.
balanced_prefix() { # balanced_prefix N
	python3 - "$1" "$PARTITIONS" "$REACTORS" <<'PY'
import sys, zlib
n, parts, counts = int(sys.argv[1]), int(sys.argv[2]), [int(c) for c in sys.argv[3].split()]
def ranges(members):
    # librdkafka's range assignor: contiguous blocks, the first ones larger.
    per, extra = divmod(parts, members)
    out, start = [], 0
    for m in range(members):
        size = per + (1 if m < extra else 0)
        out.append(range(start, start + size))
        start += size
    return out
for k in range(100000):
    prefix = "g%d-" % k
    load = [0] * parts
    for i in range(1, n + 1):
        load[zlib.crc32(("%s%06d" % (prefix, i)).encode()) % parts] += 1
    if all(max(sum(load[p] for p in r) for r in ranges(m)) * m <= n + m - 1 for m in counts):
        print(prefix)
        sys.exit(0)
sys.exit("no balanced prefix")
PY
}

# A private world for one measurement: WORLD/cli.ini (topics, group: what
# bench_load and the CLI read) and, per reactor, WORLD/rN.ini.
world() { # world NAME ACTIONS
	local id w=$OUT/$1 a
	id=$(date +%s%N | tail -c 10)-$$-$RANDOM
	mkdir -p "$w"
	{
		echo "[kafka]"
		echo "bootstrap.servers = $BROKERS"
		echo "[reactor]"
		echo "group.id = bench-group-$id"
		echo "[topics]"
		echo "events = bench.$id.events"
		echo "results = bench.$id.results"
		echo "dlq = bench.$id.dlq"
		echo "partitions = $PARTITIONS"
	} >"$w/cli.ini"
	for ((a = 1; a <= $2; a++)); do
		printf '[action bench.io%d]\nrun = /bin/sleep 0.2\nauto = true\n' "$a"
	done >"$w/actions.ini"
	cat "$w/cli.ini" "$w/actions.ini" >"$w/cli-full.ini"
	echo "$w"
}

reactor_config() { # reactor_config WORLD N PORT
	local s
	s=$SROOT/$(basename "$1")-r$2
	mkdir -p "$s/home"
	chmod 700 "$s"
	{
		echo "[kafka]"
		echo "bootstrap.servers = $BROKERS"
		echo "session.timeout.ms = 6000"
		sed -n '/^\[reactor\]/,/^\[topics\]/p' "$1/cli.ini" | sed '$d'
		echo "name = r$2"
		echo "state = $s/state.db"
		echo "workers = $WORKERS"
		echo "shutdown_grace = 5s"
		echo "http = 127.0.0.1:$3"
		if [ "$PD_GROUP_KEYS" != 0 ]; then
			echo "shared_group = true"
			echo "lease = 2s"
		fi
		sed -n '/^\[topics\]/,$p' "$1/cli.ini"
		cat "$1/actions.ini"
	} >"$1/r$2.ini"
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts reactor N of WORLD; sets RPID and RPORT.
reactor_start() { # reactor_start WORLD N
	RPORT=$(free_port)
	reactor_config "$1" "$2" "$RPORT"
	HOME=$SROOT/$(basename "$1")-r$2/home \
		"$BUILD/postdeploy-reactor" -c "$1/r$2.ini" >>"$1/r$2.log" 2>&1 &
	RPID=$!
	PIDS+=("$RPID")
}

# Awaits /readyz 200 (joined, partitions assigned) of the reactor on PORT.
await_ready() { # await_ready WORLD N PID PORT
	local i code
	for ((i = 0; i < 600; i++)); do
		code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$4/readyz" || true)
		[ "$code" = 200 ] && return 0
		kill -0 "$3" 2>/dev/null || break
		sleep 0.1
	done
	echo "reactor r$2 not ready (/readyz $code); $1/r$2.log ends:" >&2
	tail -n 5 "$1/r$2.log" >&2
	return 1
}

stop_all() {
	local pid
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	PIDS=()
}

# ---- a) wall time to all finished, 1..3 reactors ----------------------------

PREFIX=$(balanced_prefix "$TENANTS")
for n in $REACTORS; do
	w=$(world "scale-$n" 2)
	declare -a ports=() pids=()
	for ((i = 1; i <= n; i++)); do
		reactor_start "$w" "$i"
		pids[i]=$RPID ports[i]=$RPORT
	done
	# The last one to be ready has its assignment: the group has formed.
	for ((i = 1; i <= n; i++)); do
		await_ready "$w" "$i" "${pids[i]}" "${ports[i]}" || die "the group of $n did not form"
	done
	"$BUILD/bench/bench_load" -c "$w/cli-full.ini" -m burst -n "$TENANTS" -p "$PREFIX" \
		-T 300 >"$w/load.out" || die "scale-out with $n reactor(s): not every event completed ($w)"
	[ "$(val actions "$w/load.out")" -ge $((TENANTS * 2)) ] ||
		die "scale-out with $n reactor(s): $(val actions "$w/load.out") actions finished"
	fig "b10.wall.$n" "$(awk -v s="$(val seconds "$w/load.out")" 'BEGIN { printf "%.0f", s * 1000 }')"
	fig "b10.actions.$n" "$(val actions "$w/load.out")"
	stop_all
done
one=$(awk '$1 == "b10.wall.1" { print $2 }' "$OUT/figures")
for n in $REACTORS; do
	x=$(awk -v k="b10.wall.$n" '$1 == k { print $2 }' "$OUT/figures")
	[ -n "$one" ] && fig "b10.speedup.$n" "$(awk -v a="$one" -v b="$x" 'BEGIN { printf "%.2f", a / b }')"
done

# ---- b) publish -> started while a reactor joins ------------------------------

steady() { # steady NAME JOIN(0|1)
	local w i
	w=$(world "$1" 1)
	declare -a ports=() pids=()
	for i in 1 2; do
		reactor_start "$w" "$i"
		pids[i]=$RPID ports[i]=$RPORT
	done
	for i in 1 2; do await_ready "$w" "$i" "${pids[i]}" "${ports[i]}" || die "the group did not form"; done
	"$BUILD/bench/bench_load" -c "$w/cli-full.ini" -m steady -r "$STEADY_RATE" \
		-n "$STEADY_EVENTS" -w 5 -p "${PREFIX}s" -T 300 -o "$w/trace.txt" >"$w/load.out" &
	local load=$! t0 t1
	t0=$(date +%s%N)
	if [ "$2" = 1 ]; then
		# A third of the way through the events (the load's own pace).
		sleep "$(awk -v n="$STEADY_EVENTS" -v r="$STEADY_RATE" 'BEGIN { printf "%.1f", n / r / 3 }')"
		reactor_start "$w" 3
		await_ready "$w" 3 "$RPID" "$RPORT" || die "r3 did not join"
		t1=$(date +%s%N)
	fi
	wait "$load" || die "$1: not every event completed ($w)"
	if [ "$2" = 1 ]; then
		# The join counts only if it finished while events were still sent.
		fig "b10.join.ready_ms" $(((t1 - t0) / 1000000))
		fig "b10.join.load_ms" "$(awk -v n="$STEADY_EVENTS" -v r="$STEADY_RATE" 'BEGIN { printf "%.0f", n / r * 1000 }')"
	fi
	stop_all
	for k in start_p50_ms start_p99_ms start_max_ms; do
		fig "b10.$1.$k" "$(val "$k" "$w/load.out")"
	done
}
[ "$SMOKE" = 1 ] || steady steady 0
steady join 1

echo
echo "benchmark 10 (group): $TENANTS tenants x 2 actions of 0.2 s, $WORKERS workers a reactor," \
	"$PARTITIONS partitions, group keys $([ "$PD_GROUP_KEYS" = 0 ] && echo "left out (PD_GROUP_KEYS=0)" || echo on)"
for n in $REACTORS; do
	printf '  %d reactor(s): %6s ms to all finished, speed-up %sx\n' "$n" \
		"$(awk -v k="b10.wall.$n" '$1 == k { print $2 }' "$OUT/figures")" \
		"$(awk -v k="b10.speedup.$n" '$1 == k { print $2 }' "$OUT/figures")"
done
for s in $([ "$SMOKE" = 1 ] || echo steady) join; do
	printf '  publish -> started at %s/s, %s: p50 %s / p99 %s / max %s ms\n' "$STEADY_RATE" \
		"$([ "$s" = join ] && echo "2 reactors while a 3rd joins" || echo "2 reactors, no join")" \
		"$(awk -v k="b10.$s.start_p50_ms" '$1 == k { print $2 }' "$OUT/figures")" \
		"$(awk -v k="b10.$s.start_p99_ms" '$1 == k { print $2 }' "$OUT/figures")" \
		"$(awk -v k="b10.$s.start_max_ms" '$1 == k { print $2 }' "$OUT/figures")"
done
printf '  (r3 was ready %s ms after the load began, which sends for %s ms)\n' \
	"$(awk '$1 == "b10.join.ready_ms" { print $2 }' "$OUT/figures")" \
	"$(awk '$1 == "b10.join.load_ms" { print $2 }' "$OUT/figures")"
echo "files: $OUT"
