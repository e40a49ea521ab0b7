#!/usr/bin/env bash
# Issue 15, throttle: `concurrency = 2` on an action lets at most two
# tenants run it at once in a reactor, though eight workers are free; the
# other tenants wait (queued) and each runs once when a slot frees. A run
# held behind `concurrency = 1` shows as queued in the report and in
# --wait, and a stop does not wait for the queue.
source "$(dirname "$0")/lib.sh"
pd_require_broker
# count.sh: the overlap counter. Under a lock it adds one to the runs going
# now and keeps the highest count seen, works 0.3 s, then takes one off.
cat >"$T/count.sh" <<'SH'
#!/bin/sh
exec 9>"$MARKERS/lock"
flock 9
n=$(($(cat "$MARKERS/now" 2>/dev/null || echo 0) + 1))
echo "$n" >"$MARKERS/now"
[ "$n" -gt "$(cat "$MARKERS/max" 2>/dev/null || echo 0)" ] && echo "$n" >"$MARKERS/max"
echo "$1" >>"$MARKERS/ran"
flock -u 9
/bin/sleep 0.3
flock 9
echo $(($(cat "$MARKERS/now") - 1)) >"$MARKERS/now"
SH
chmod +x "$T/count.sh"
pd_config <<INI
[action t.backfill]
run = $T/count.sh {tenant}
auto = true
concurrency = 2

[action t.hold]
run = $T/hold.sh {tenant}
concurrency = 1

[action t.quick]
run = /bin/true
INI
sed -i 's/^workers = 4$/workers = 8/; s/^shutdown_grace = 10s$/shutdown_grace = 1s/' \
	"$T/postdeploy.ini"
# hold.sh: runs until the test removes its gate.
cat >"$T/hold.sh" <<'SH'
#!/bin/sh
echo "$1" >>"$MARKERS/held"
while [ -e "$MARKERS/gate" ]; do /bin/sleep 0.05; done
SH
chmod +x "$T/hold.sh"
tenants=()
for i in $(seq -w 1 20); do tenants+=(--tenant "t$i"); done
pd_reactor_start
pd_rc rc pd_cli deploy --auto --release 1.0 "${tenants[@]}" --wait --timeout 120s
pd_eq "the deploy of 20 tenants succeeds" 0 "$rc"
pd_eq "all 20 tenants ran the action" 20 "$(pd_lines "$T/markers/ran")"
pd_eq "each tenant ran it once" 20 "$(sort -u "$T/markers/ran" | wc -l | tr -d ' ')"
pd_eq "never more than 2 at once, and 2 did run together" 2 "$(cat "$T/markers/max")"
pd_check "the reactor says runs were queued" grep -q "t.backfill: queued" "$T/reactor.log"

# One slot for t.hold: one of h1..h9 takes it and holds it, eight wait. A
# waiting run holds no worker (8 workers), so another action of another
# tenant runs meanwhile.
touch "$T/markers/gate"
hold_tenants=()
for i in 1 2 3 4 5 6 7 8 9; do hold_tenants+=(--tenant "h$i"); done
pd_cli deploy --one t.hold --release 2.0 "${hold_tenants[@]}" --wait \
	--timeout 60s >"$T/hold.out" 2>&1 &
hold_pid=$!
# Awaited, not slept: the report is read until it shows the queue (or 30 s).
queued=0
for _ in $(seq 1 300); do
	pd_report
	queued=$(python3 -c '
import json, sys
print(sum(r["action"] == "t.hold" and r["state"] == "queued" for r in json.load(open(sys.argv[1]))))' "$T/report.json")
	[ "$queued" = 8 ] && break
	/bin/sleep 0.1
done
held=$(head -n 1 "$T/markers/held")
other=h2; [ "$held" = h2 ] && other=h1
pd_eq "the report shows the 8 waiting runs as queued" 8 "$queued"
pd_eq "and the holding one as running" running "$(pd_state "$held" t.hold state)"
pd_eq "only one t.hold ran so far" 1 "$(pd_lines "$T/markers/held")"
pd_rc quick_rc pd_cli deploy --one t.quick --release 2.0 --tenant q1 --wait --timeout 20s
pd_eq "another tenant's other action runs while 8 runs are queued" 0 "$quick_rc"
pd_eq "each waiting run was queued once, not again and again" 8 \
	"$(grep -c "t.hold: queued" "$T/reactor.log")"
rm "$T/markers/gate"
hold_rc=0; wait "$hold_pid" || hold_rc=$?
pd_eq "all nine held runs finish once the slot frees" 0 "$hold_rc"
pd_eq "each of the nine ran once" 9 "$(sort -u "$T/markers/held" | wc -l | tr -d ' ')"
pd_eq "nine runs in all" 9 "$(pd_lines "$T/markers/held")"
pd_check "--wait printed the queued runs" grep -q "t.hold .* queued" "$T/hold.out"
pd_report
pd_eq "the report shows a queued one succeeded after" succeeded "$(pd_state "$other" t.hold state)"

# A reload (SIGHUP) while a run is queued: the queued job is in the queue,
# not in a worker; the reload waits for the running one, then both run.
touch "$T/markers/gate"
: >"$T/markers/held"
base=$(grep -c "t.hold: queued" "$T/reactor.log")
pd_cli deploy --one t.hold --release 2.5 --tenant h1 --tenant h2 --wait \
	--timeout 60s >"$T/reload.out" 2>&1 &
reload_pid=$!
for _ in $(seq 1 300); do
	[ "$(grep -c "t.hold: queued" "$T/reactor.log")" = $((base + 1)) ] &&
		[ "$(pd_lines "$T/markers/held")" = 1 ] && break
	/bin/sleep 0.1
done
kill -HUP "$PD_REACTOR_PID"
for _ in $(seq 1 300); do
	grep -q "reloading the config" "$T/reactor.log" && break
	/bin/sleep 0.1
done
pd_check "the reload is under way" grep -q "reloading the config" "$T/reactor.log"
rm "$T/markers/gate"
reload_rc=0; wait "$reload_pid" || reload_rc=$?
pd_eq "both runs finish after the reload" 0 "$reload_rc"
pd_eq "each of the two ran once" 2 "$(pd_lines "$T/markers/held")"
pd_check "the config was reloaded" grep -q "config reloaded" "$T/reactor.log"

# A stop while a run is queued: the queue does not hold the stop up, and
# the queued run does not start.
touch "$T/markers/gate"
: >"$T/markers/held"
base=$(grep -c "t.hold: queued" "$T/reactor.log")
pd_cli deploy --one t.hold --release 3.0 --tenant h1 --tenant h2 >/dev/null 2>&1
for _ in $(seq 1 300); do
	[ "$(grep -c "t.hold: queued" "$T/reactor.log")" = $((base + 1)) ] &&
		[ "$(pd_lines "$T/markers/held")" = 1 ] && break
	/bin/sleep 0.1
done
pd_eq "one run holds the slot" 1 "$(pd_lines "$T/markers/held")"
pd_eq "the other waits (queued)" $((base + 1)) "$(grep -c "t.hold: queued" "$T/reactor.log")"
start=$(date +%s%N)
pd_reactor_stop || true
took=$((($(date +%s%N) - start) / 1000000))
echo "# the stop took $took ms (shutdown_grace 1s)"
pd_check "the stop ends within 10 s though a run was queued" [ "$took" -lt 10000 ]
pd_eq "the queued run did not start while the reactor stopped" 1 "$(pd_lines "$T/markers/held")"
rm -f "$T/markers/gate"
pd_done
