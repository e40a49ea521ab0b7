#!/usr/bin/env bash
# `report --tenant T` reads T's partition in full and every other partition
# only up to its first record marked co-partitioned (header pd_cp): a topic
# written by reactors from before co-partitioning holds T's older results on
# any partition (keyed tenant/action, the partitioner chose), and the report
# must still show the newest state of every action of T, nothing of other
# tenants. A marked record that is not where its tenant's events go makes
# the report read everything again.
source "$(dirname "$0")/lib.sh"
pd_require_broker
FILL=$PD_BIN/bench/bench_fill_results
[ -x "$FILL" ] || pd_die "$FILL is not built (cmake -DPD_BENCH=ON)"
# Today's reactor runs 5 of the 10 actions the old records have.
pd_config <<INI
[action bench.a0]
run = /bin/true
auto = true
[action bench.a1]
run = /bin/true
auto = true
[action bench.a2]
run = /bin/false
auto = true
[action bench.a3]
run = /bin/true
auto = true
[action bench.a4]
run = /bin/true
auto = true
INI
# 6 partitions: T (t000005) has its events on 4, the key "t000005/~pause"
# (a resume of every tenant tells T by a record placed by its key) goes to
# 3, the registry and "~pause" are on 0: those three are read in full, 1, 2
# and 5 up to their first marked record. T's old records are on 0-3.
sed -i 's/^partitions = .*/partitions = 6/' "$T/postdeploy.ini"
RESULTS=pdtest.$RUN_ID.results
TEN=t000005

# Rows of a JSON report as "tenant action state release attempt" lines.
rows() {
	python3 -c '
import json, sys
for r in json.load(open(sys.argv[1])):
    if len(sys.argv) < 3 or r["tenant"] == sys.argv[2]:
        print(r["tenant"], r["action"], r["state"], r["release"], r["attempt"])' "$@"
}

# 1. Records as the reactors before co-partitioning wrote them: 20 tenants
# (t000000 ...) x 10 actions, keyed tenant/action, no marker.
"$FILL" -c "$T/postdeploy.ini" -n 20 -a 10 -e 2 >/dev/null
# Where T's old records are: partitions beside the one its events use.
kcat -C -b "$PD_BROKERS" -t "$RESULTS" -o beginning -e -q \
	-f '%p %k\n' 2>/dev/null >"$T/old.txt"
# 2. Today's reactor: every tenant's deploy, so that every partition has
# marked records after the old ones.
pd_reactor_start
tenants=()
for i in $(seq 0 19); do tenants+=(--tenant "$(printf 't%06d' "$i")"); done
pd_rc rc pd_cli deploy --auto --release 2 "${tenants[@]}" --wait --timeout 60s
pd_eq "the deploys finished (bench.a2 fails each)" 1 "$rc"
# T paused (its record on T's partition), then every tenant resumed: T is
# told by a record keyed t000005/~pause, which goes where its key says (3).
pd_rc rc pd_cli pause --tenant "$TEN" --requested-by oncall --wait --timeout 60s
pd_eq "T paused" 0 "$rc"
pd_rc rc pd_cli resume --all-tenants --wait --timeout 60s
pd_eq "every tenant resumed" 0 "$rc"
pd_eq "T's resume is on partition 3, after marked records" "3" \
	"$(kcat -C -b "$PD_BROKERS" -t "$RESULTS" -o beginning -e -q -f '%p %k %o\n' 2>/dev/null |
		awk -v k="$TEN/~pause" '$2 == k && $1 != 4 && $3 > 0 { print $1 }' | tail -n 1)"
pd_reactor_stop
tp=$(kcat -C -b "$PD_BROKERS" -t "pdtest.$RUN_ID.events" -o beginning -e -q \
	-f '%p %k\n' 2>/dev/null | awk -v t="$TEN" '$2 == t { print $1; exit }')
pd_eq "T's old records are on partitions other than its events' ($tp)" yes \
	"$(awk -v t="$TEN/" -v p="$tp" 'index($2, t) == 1 && $1 != p { y = 1 } END { print y ? "yes" : "no" }' "$T/old.txt")"
pd_eq "every results partition ends with marked records" "0 1 2 3 4 5" \
	"$(kcat -C -b "$PD_BROKERS" -t "$RESULTS" -o -1 -e -q -f '%p %h\n' 2>/dev/null |
		awk '/pd_cp=1/ { print $1 }' | sort -u | tr '\n' ' ' | sed 's/ $//')"

pd_report
pd_cli report -v --tenant "$TEN" --format json >"$T/one.json" 2>"$T/one.err"
pd_eq "T's events are on partition 4" 4 "$tp"
pd_eq "partitions 0, 3 and 4 read in full, the 3 others to their first marked record" \
	"3 partition(s) read in full, the other 3 up to their first marked record|0" \
	"$(grep -o '[0-9] partition(s) read in full.*' "$T/one.err" | paste -sd'|')|$(grep -c 'reading them all' "$T/one.err" || true)"
pd_eq "only T's rows, one per action" "$TEN:10" \
	"$(rows "$T/one.json" | awk '{ c[$1]++ } END { for (t in c) print t ":" c[t] }')"
pd_eq "the actions today's reactor ran: its records (release 2, attempt 1)" \
	"bench.a0 succeeded 2 1|bench.a1 succeeded 2 1|bench.a2 failed 2 1|bench.a3 succeeded 2 1|bench.a4 succeeded 2 1" \
	"$(rows "$T/one.json" | awk '$2 ~ /bench.a[0-4]$/ { print $2, $3, $4, $5 }' | paste -sd'|')"
pd_eq "the others: the old records, wherever they are (release 1.0.0)" \
	"5" "$(rows "$T/one.json" | awk '$2 ~ /bench.a[5-9]$/ && $4 == "1.0.0" && $5 == 1' | wc -l | tr -d ' ')"
pd_eq "the same rows as the full report has for T" \
	"$(rows "$T/report.json" "$TEN")" "$(rows "$T/one.json")"
pd_eq "T is not paused any more (its resume read)" "0 0" \
	"$(python3 -c 'import json, sys; print(sum("paused_by" in r for r in json.load(open(sys.argv[1]))))' "$T/one.json") $(python3 -c 'import json, sys; print(sum("paused_by" in r for r in json.load(open(sys.argv[1])) if r["tenant"] == sys.argv[2]))' "$T/report.json" "$TEN")"

# 3. A marked record that is not where its tenant's events go (a run
# recovered without its tenant's partition, partition counts changed),
# first of its partition, with newer old-style records of T after it:
# the report must read everything.
sed -e "s|pdtest\.$RUN_ID\.|pdtest.$RUN_ID.b.|" "$T/postdeploy.ini" >"$T/b.ini"
"$FILL" -c "$T/b.ini" -n 20 -a 10 -e 2 >/dev/null
RB=pdtest.$RUN_ID.b.results
# T's partition (CRC-32 of the tenant, librdkafka's default partitioner),
# a partition q that is read only to its first marked record (not T's, 0
# or T/~pause's) and holds old records of T, and a tenant whose
# events are not on q.
read -r q u < <(python3 -c '
import sys, zlib
t = sys.argv[1]
full = (0, zlib.crc32(t.encode()) % 6, zlib.crc32((t + "/~pause").encode()) % 6)
keys = [zlib.crc32(("%s/bench.a%d" % (t, a)).encode()) % 6 for a in range(10)]
q = [p for p in range(6) if p not in full and p in keys][0]
u = [n for n in ("t%06d" % i for i in range(20)) if zlib.crc32(n.encode()) % 6 != q][0]
print(q, u)' "$TEN")
printf 'not an event' | kcat -P -b "$PD_BROKERS" -t "$RB" -p "$q" -k "$u/bench.a0" -H pd_cp=1
"$FILL" -c "$T/b.ini" -n 20 -a 10 -e 4 >/dev/null # attempt 2, after it
"$PD_BIN/postdeploy" report --format json -c "$T/b.ini" >"$T/b-all.json"
"$PD_BIN/postdeploy" report -v --tenant "$TEN" --format json -c "$T/b.ini" \
	>"$T/b-one.json" 2>"$T/b-one.err"
pd_eq "a marked record of $u on partition $q: everything read again" 1 \
	"$(grep -c 'reading them all' "$T/b-one.err")"
pd_eq "every action of T at its newest attempt (2)" "10" \
	"$(rows "$T/b-one.json" | awk '$5 == 2' | wc -l | tr -d ' ')"
pd_eq "the same rows as the full report has for T" \
	"$(rows "$T/b-all.json" "$TEN")" "$(rows "$T/b-one.json")"
pd_done
