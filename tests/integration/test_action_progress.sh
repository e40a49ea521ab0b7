#!/usr/bin/env bash
# Issue 15, progress: a command writes "DONE TOTAL" lines to
# $POSTDEPLOY_PROGRESS_FD and a plugin calls ctx->progress; the results
# topic gets action.progress records at a bounded rate (at most one per
# progress_interval per run, plus the last before action.finished, on the
# same partition), done never goes back, the last equals the final value,
# `report` shows the newest while the action runs and `deploy --wait` says
# it. A command flooding the pipe with a million lines finishes and the
# supervisor's memory stays flat.
source "$(dirname "$0")/lib.sh"
pd_require_broker
PY=${PD_PYTHON:-$(bash "$PD_SOURCE_DIR/tests/interop/venv.sh")}

# t.plug: reports 1..20 of 20, then waits for its gate to go.
cat >"$T/plug.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <postdeploy/plugin.h>

static int plug(const pd_action_ctx_t *ctx, char *errstr, size_t errstr_size) {
	char gate[4096];
	struct timespec ts = {0, 20 * 1000 * 1000};

	(void)errstr;
	(void)errstr_size;
	if (ctx->abi < 3)
		return 1;
	for (int i = 1; i <= 20; i++)
		ctx->progress(ctx, i, 20);
	snprintf(gate, sizeof(gate), "%s/gate_plug", getenv("MARKERS"));
	while (access(gate, F_OK) == 0 && !ctx->cancelled(ctx))
		nanosleep(&ts, NULL);
	return 0;
}

PD_PLUGIN_INIT(reg) {
	return PD_ACTION(reg, "t.plug", PD_MANUAL, plug, "reports progress");
}
C
cc -shared -fPIC -o "$T/plug.so" -I"$PD_SOURCE_DIR/include" "$T/plug.c" ||
	pd_die "cannot build the test plugin"

# t.count: 1..200 of 200 as fast as it can (one a "DONE/TOTAL", one bad
# line among them), then waits for its gate to go.
cat >"$T/count.sh" <<'SH'
#!/bin/sh
i=1
while [ $i -le 200 ]; do
	if [ $i = 100 ]; then echo "$i/200"; else echo "$i 200"; fi
	[ $i = 50 ] && echo "fifty"
	i=$((i + 1))
done >&"$POSTDEPLOY_PROGRESS_FD"
echo "counted"
while [ -e "$MARKERS/gate_cmd" ]; do /bin/sleep 0.05; done
SH
chmod +x "$T/count.sh"
# t.slow: 1..30 of 30 over some 2 s: progress along the way, not only at
# the start and the end.
cat >"$T/slow.sh" <<'SH'
#!/bin/sh
i=1
while [ $i -le 30 ]; do
	echo "$i 30" >&3
	/bin/sleep 0.07
	i=$((i + 1))
done
SH
chmod +x "$T/slow.sh"
# t.hose: a new value per line, as fast as awk goes, for 4 s.
cat >"$T/hose.sh" <<'SH'
#!/bin/sh
timeout 4 awk 'BEGIN { for (i = 1;; i++) printf "%d 1000000000000\n", i }' >&3
exit 0
SH
chmod +x "$T/hose.sh"
pd_config <<INI
[action t.count]
run = $T/count.sh
auto = false
[action t.slow]
run = $T/slow.sh
auto = false
[action t.hose]
run = $T/hose.sh
auto = false
[action t.quick]
run = /bin/true
auto = false
[action t.flood]
run = /bin/sh -c "seq 1000000 | sed 's/\$/ 1000000/' >&3"
auto = false
INI
sed -i "s|^\[reactor\]|[reactor]\nplugins = $T/plug.so\nprogress_interval = 500ms|" \
	"$T/postdeploy.ini"
pd_reactor_start

# One tenant runs its actions one after the other: two tenants, so that
# both run at once.
touch "$T/markers/gate_cmd" "$T/markers/gate_plug"
pd_cli deploy --one t.count --release 1.0 --tenant acme --wait \
	--timeout 60s >"$T/wait.out" 2>&1 &
wait_pid=$!
pd_cli deploy --one t.plug --release 1.0 --tenant globex --wait \
	--timeout 60s >"$T/wait_plug.out" 2>&1 &
wait_plug_pid=$!
# Awaited, not slept: the report is read until both show their last value
# (30 s at most).
seen=
deadline=$(($(date +%s) + 30))
while [ "$(date +%s)" -lt "$deadline" ]; do
	pd_report 2>/dev/null || true # the topics may not be there yet
	seen="$(pd_state acme t.count progress_done 2>/dev/null || true) $(pd_state globex t.plug progress_done 2>/dev/null || true)"
	[ "$seen" = "200 20" ] && break
	/bin/sleep 0.1
done
pd_eq "report shows the newest progress of both running actions" "200 20" "$seen"
pd_eq "the command's total" 200 "$(pd_state acme t.count progress_total)"
pd_eq "the plugin's total" 20 "$(pd_state globex t.plug progress_total)"
pd_eq "t.count is running" running "$(pd_state acme t.count state)"
pd_eq "t.plug is running" running "$(pd_state globex t.plug state)"
pd_cli report >"$T/report.txt"
pd_check "the table says it too" grep -q "progress: 100% (200/200)" "$T/report.txt"
pd_check "the malformed line was ignored, and said once" \
	[ "$(cat "$T"/state/supervisor-*/supervisor.log | grep -c 'a progress line is not')" = 1 ]
rm "$T/markers/gate_cmd" "$T/markers/gate_plug"
rc=0; wait "$wait_pid" || rc=$?
pd_eq "the command's deploy succeeds" 0 "$rc"
rc=0; wait "$wait_plug_pid" || rc=$?
pd_eq "the plugin's deploy succeeds" 0 "$rc"
pd_check "deploy --wait printed the command's progress" \
	grep -Eq "^acme: +t.count +[0-9]+% \([0-9]+/200\)$" "$T/wait.out"
pd_eq "one progress line per action per 10 s (t.count said 2 in 2 s)" 1 \
	"$(grep -Ec "^acme: +t.count +[0-9]+% " "$T/wait.out")"
pd_check "and the plugin's" \
	grep -Eq "^globex: +t.plug +[0-9]+% \([0-9]+/20\)$" "$T/wait_plug.out"
pd_report
pd_eq "a finished action shows no progress" - "$(pd_state acme t.count progress_done 2>/dev/null || echo -)"

# On a terminal (script gives it one) the status line carries it.
script -qec "'$PD_BIN/postdeploy' deploy --one t.slow --release 1.0 \
	--tenant acme --wait --timeout 60s -c '$T/postdeploy.ini'" /dev/null \
	>"$T/tty.out" 2>&1 || true
pd_check "the slow one succeeds" grep -q "1 action(s) finished, 0 failed" "$T/tty.out"
pd_check "on a terminal the status line shows the progress" \
	grep -Eq $'\r\033\\[K\\[0/1 done\\] running: acme t.slow [0-9.]+ (ms|s) [0-9]+% \\([0-9]+/30\\)' "$T/tty.out"
pd_check "and no progress line is printed there" \
	bash -c "! grep -Eq 'acme: +t.slow +[0-9]+%' '$T/tty.out'"

# The flood: one run writes a million lines to the pipe.
sup_pid=$(ps -eo pid=,args= | awk -v d="$T/state" 'index($0, "--supervisor " d) {print $1; exit}')
[ -n "$sup_pid" ] || pd_die "no supervisor found for $T/state"
hwm_before=$(awk '/^VmHWM/ {print $2}' "/proc/$sup_pid/status")
start=$(date +%s%N)
pd_rc rc pd_cli deploy --one t.flood --release 1.0 --tenant acme --wait --timeout 120s
took=$((($(date +%s%N) - start) / 1000000))
hwm_after=$(awk '/^VmHWM/ {print $2}' "/proc/$sup_pid/status")
echo "# flood of 1,000,000 lines: $took ms; supervisor peak RSS $hwm_before kB before, $hwm_after kB after"
pd_eq "the flooding action finishes and succeeds" 0 "$rc"
pd_check "the supervisor's peak memory grew by less than 4 MiB" \
	[ $((hwm_after - hwm_before)) -lt 4096 ]

# A flood that goes on (4 s of awk writing a new value per line, as fast
# as it can) does not hold up another run
# under the same supervisor.
pd_rc rc pd_cli deploy --one t.quick --release 1.0 --tenant globex --wait --timeout 60s
start=$(date +%s%N)
pd_rc rc pd_cli deploy --one t.quick --release 1.1 --tenant globex --wait --timeout 60s
calm=$((($(date +%s%N) - start) / 1000000))
pd_cli deploy --one t.hose --release 1.0 --tenant acme --wait --timeout 60s \
	>"$T/hose.out" 2>&1 &
hose_pid=$!
# Awaited: the supervisor is reading the flood once a progress comes.
for _ in $(seq 1 100); do
	grep -q "t.hose.*%" "$T/hose.out" && break
	/bin/sleep 0.05
done
start=$(date +%s%N)
pd_rc rc pd_cli deploy --one t.quick --release 1.2 --tenant globex --wait --timeout 60s
busy=$((($(date +%s%N) - start) / 1000000))
echo "# deploy --wait of /bin/true: $calm ms calm, $busy ms during the flood"
pd_eq "another run succeeds during the flood" 0 "$rc"
pd_check "and within 3 s (it took $busy ms)" [ "$busy" -lt 3000 ]
hose_rc=0; wait "$hose_pid" || hose_rc=$?
pd_eq "the flooding run succeeds" 0 "$hose_rc"
pd_check "the flood was on while the other ran" grep -q "t.hose.*%" "$T/hose.out"
hwm_hose=$(awk '/^VmHWM/ {print $2}' "/proc/$sup_pid/status")
echo "# supervisor peak RSS after 4 s of awk: $hwm_hose kB"
pd_check "the supervisor's peak memory still within 4 MiB of before" \
	[ $((hwm_hose - hwm_before)) -lt 4096 ]

# What the results topic holds, per run: the progress records and the
# action.finished, in partition order.
"$PY" - "$PD_SOURCE_DIR/tests/interop" "$PD_BROKERS" "pdtest.$RUN_ID.results" >"$T/check.out" 2>&1 <<'PY' || true
import sys, uuid
sys.path.insert(0, sys.argv[1])
from interop import load_schemas, decode_single_object
from confluent_kafka import Consumer, TopicPartition
brokers, topic = sys.argv[2], sys.argv[3]
by_fp = load_schemas()
c = Consumer({"bootstrap.servers": brokers, "group.id": "check-" + str(uuid.uuid4()),
              "enable.auto.commit": False})
parts = c.list_topics(topic, timeout=10).topics[topic].partitions
ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
c.assign([TopicPartition(topic, p, 0) for p in parts])
recs, left = [], {p for p in parts if ends[p] > 0}
while left:
    m = c.poll(5)
    if m is None:
        sys.exit("the results topic did not come to its end")
    if m.error():
        continue
    if m.offset() + 1 >= ends[m.partition()]:
        left.discard(m.partition())
    name, d = decode_single_object(by_fp, m.value())
    recs.append((m.partition(), m.offset(), name, m.key().decode(), d))
c.close()
interval_ms = 500
fails = 0
def check(what, ok):
    global fails
    print(("ok   - " if ok else "FAIL - ") + what)
    fails += not ok
for action, final in (("t.count", 200), ("t.plug", 20), ("t.slow", 30),
                      ("t.flood", 1000000), ("t.hose", None)):
    prog = [r for r in recs if r[2] == "action_progress" and r[4]["action"] == action]
    fin = [r for r in recs if r[2] == "action_finished" and r[4]["action"] == action]
    tenant = fin[0][4]["tenant"] if fin else "?"
    check("%s: one action.finished" % action, len(fin) == 1)
    if not prog or not fin:
        check("%s: has action.progress records" % action, False)
        continue
    f = fin[0]
    done = [r[4]["done"] for r in sorted(prog, key=lambda r: r[1])]
    bound = f[4]["duration_ms"] // interval_ms + 2
    print("# %s: %d progress records in %d ms (bound %d): %s" % (
        action, len(prog), f[4]["duration_ms"], bound, done[:8]))
    check("%s: keyed apart from tenant/action" % action,
          all(r[3] == "%s/%s/progress" % (tenant, action) for r in prog))
    check("%s: on the partition of its action.finished" % action,
          all(r[0] == f[0] for r in prog))
    check("%s: done never goes back" % action, done == sorted(done))
    check("%s: at most duration/interval + 2 records" % action, len(prog) <= bound)
    if action == "t.slow":
        check("t.slow: one at least every interval along the way",
              len(prog) >= f[4]["duration_ms"] // interval_ms - 1)
    if final is not None:
        check("%s: the last is the final value, total included" % action,
              done[-1] == final and
              sorted(prog, key=lambda r: r[1])[-1][4]["total"] == final)
    check("%s: the last comes before the action.finished" % action,
          max(r[1] for r in prog) < f[1])
    check("%s: of the run's attempt and trigger" % action,
          all(r[4]["attempt"] == f[4]["attempt"] and
              r[4]["trigger_id"] == f[4]["trigger_id"] for r in prog))
sys.exit(1 if fails else 0)
PY
cat "$T/check.out"
pd_check "the results topic holds what it should (above)" grep -q "^ok" "$T/check.out"
pd_check "... and nothing failed" [ "$(grep -c '^FAIL\|^Traceback\|Error' "$T/check.out")" = 0 ]
pd_reactor_stop || true
pd_done
