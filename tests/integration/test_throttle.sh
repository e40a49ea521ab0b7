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

# One slot for t.hold: h1 takes it and holds it, h2 waits.
touch "$T/markers/gate"
pd_cli deploy --one t.hold --release 2.0 --tenant h1 --tenant h2 --wait \
	--timeout 60s >"$T/hold.out" 2>&1 &
hold_pid=$!
# Awaited, not slept: the report is read until it shows the queue (or 30 s).
queued=-
for _ in $(seq 1 300); do
	pd_report
	held=$(head -n 1 "$T/markers/held" 2>/dev/null || true)
	if [ -n "$held" ]; then
		other=h2; [ "$held" = h2 ] && other=h1
		queued=$(pd_state "$other" t.hold state)
		[ "$queued" = queued ] && break
	fi
	/bin/sleep 0.1
done
pd_eq "the report shows the waiting run as queued" queued "$queued"
pd_eq "and the holding one as running" running "$(pd_state "$held" t.hold state)"
pd_eq "only one t.hold ran so far" 1 "$(pd_lines "$T/markers/held")"
rm "$T/markers/gate"
hold_rc=0; wait "$hold_pid" || hold_rc=$?
pd_eq "both held runs finish once the slot frees" 0 "$hold_rc"
pd_check "--wait printed the queued run" grep -q "t.hold .* queued" "$T/hold.out"
pd_report
pd_eq "the report shows the queued one succeeded after" succeeded "$(pd_state "$other" t.hold state)"

# A reload (SIGHUP) while a run is queued: the wait ends, nothing starts,
# the event runs again under the reloaded config once the holder is done.
touch "$T/markers/gate"
: >"$T/markers/held"
pd_cli deploy --one t.hold --release 2.5 --tenant h1 --tenant h2 --wait \
	--timeout 60s >"$T/reload.out" 2>&1 &
reload_pid=$!
for _ in $(seq 1 300); do
	[ "$(grep -c "t.hold: queued" "$T/reactor.log")" = 2 ] &&
		[ "$(pd_lines "$T/markers/held")" = 1 ] && break
	/bin/sleep 0.1
done
kill -HUP "$PD_REACTOR_PID"
for _ in $(seq 1 300); do
	grep -q "t.hold: reloading while queued" "$T/reactor.log" && break
	/bin/sleep 0.1
done
pd_check "a reload ends the queued run's wait" grep -q "t.hold: reloading while queued; not started" "$T/reactor.log"
rm "$T/markers/gate"
reload_rc=0; wait "$reload_pid" || reload_rc=$?
pd_eq "both runs finish after the reload" 0 "$reload_rc"
pd_eq "each of the two ran once" 2 "$(pd_lines "$T/markers/held")"

# A stop while a run is queued: the queue does not hold the stop up.
touch "$T/markers/gate"
: >"$T/markers/held"
pd_cli deploy --one t.hold --release 3.0 --tenant h1 --tenant h2 >/dev/null 2>&1
for _ in $(seq 1 300); do
	[ "$(grep -c "t.hold: queued" "$T/reactor.log")" = 3 ] &&
		[ "$(pd_lines "$T/markers/held")" = 1 ] && break
	/bin/sleep 0.1
done
pd_eq "one run holds the slot" 1 "$(pd_lines "$T/markers/held")"
pd_eq "the other waits (its third queued line)" 3 "$(grep -c "t.hold: queued" "$T/reactor.log")"
start=$(date +%s%N)
pd_reactor_stop || true
took=$((($(date +%s%N) - start) / 1000000))
echo "# the stop took $took ms (shutdown_grace 1s)"
pd_check "the stop ends within 10 s though a run was queued" [ "$took" -lt 10000 ]
pd_eq "the queued run did not start while the reactor stopped" 1 "$(pd_lines "$T/markers/held")"
pd_check "the reactor says it left it queued" grep -q "t.hold: stopping while queued" "$T/reactor.log"
rm -f "$T/markers/gate"
pd_done
