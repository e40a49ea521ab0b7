#!/usr/bin/env bash
# Issue 15, throttle: `concurrency = 2` on an action lets at most two
# tenants run it at once in a reactor, though eight workers are free; the
# other tenants wait (queued) and each runs once when a slot frees.
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
INI
sed -i 's/^workers = 4$/workers = 8/' "$T/postdeploy.ini"
tenants=()
for i in $(seq -w 1 20); do tenants+=(--tenant "t$i"); done
pd_reactor_start
pd_rc rc pd_cli deploy --auto --release 1.0 "${tenants[@]}" --wait --timeout 120s
pd_eq "the deploy of 20 tenants succeeds" 0 "$rc"
pd_eq "all 20 tenants ran the action" 20 "$(pd_lines "$T/markers/ran")"
pd_eq "each tenant ran it once" 20 "$(sort -u "$T/markers/ran" | wc -l | tr -d ' ')"
pd_eq "never more than 2 at once, and 2 did run together" 2 "$(cat "$T/markers/max")"
pd_check "the reactor says runs were queued" grep -q "t.backfill: queued" "$T/reactor.log"
pd_reactor_stop
pd_done
