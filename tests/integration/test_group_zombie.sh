#!/usr/bin/env bash
# Issue 11: a reactor SIGSTOPped while it runs actions, past the group's
# session timeout, is a zombie: the other reactor takes its partitions over
# and runs what it left. When the zombie wakes (SIGCONT) it must publish
# nothing for the partitions it lost: no committed record of it is produced
# after its stop (records of its aborted transactions show only to a
# read_uncommitted reader), the report is the new owner's view, and every
# once-action finished exactly once. The supervisor's lease (2 s) stops the
# zombie's runs: those began and never finished (INTERRUPTED, allowed), but
# never two runs of one (tenant, action) at once.
#
# The actions last 4 s, twice the lease: a zombie's run that could end
# before its lease passes would be done but never published (the zombie is
# fenced), and the new owner would run it again. The zombie has one worker
# and is stopped right after its run began, so its run is the one the
# lease ends.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_group.sh"
pd_require_broker
PG_WORKERS_OF[1]=1
pg_mark_script
pg_config <<INI
[action z.first]
run = $T/mark.sh {tenant} z.first 4
auto = true
[action z.second]
run = $T/mark.sh {tenant} z.second 4
auto = true
after = z.first
INI
seq -f 'zt%02.0f' 1 8 >"$T/tenants.txt"
pg_expect 3.0.0 z.first z.second <"$T/tenants.txt"

pg_start 1
pg_start 2
pd_cli deploy --auto --release 3.0.0 --tenants-file "$T/tenants.txt" \
	--wait --timeout 150s >"$T/deploy.out" 2>&1 &
DEPLOY=$!

# The zombie-to-be has begun a run.
began_on() { awk -v r="$1" '$4 == r' "$T/markers/begun" 2>/dev/null | wc -l; }
limit=$(($(date +%s) + 60))
until [ "$(began_on r1)" -ge 1 ]; do
	[ "$(date +%s)" -lt "$limit" ] || pd_die "r1 began no run in 60 s"
	sleep 0.1
done
REBALANCES=$(pg_metric 1 postdeploy_consumer_rebalances_total)
STOPPED=$(pg_now)
pg_pause 1
echo "r1 stopped while running: $(awk '$4 == "r1" { print $2, $3 }' "$T/markers/begun" | tr '\n' ' ')"

# The takeover: r2 begins a run of a tenant r1 had begun.
limit=$(($(date +%s) + 60))
until awk '$4 == "r1" { mine[$2] = 1 } $4 == "r2" && ($2 in mine) { found = 1 }
	END { exit !found }' "$T/markers/begun" 2>/dev/null; do
	[ "$(date +%s)" -lt "$limit" ] || break
	sleep 0.1
done
pd_check "r2 took over a tenant r1 was running" awk \
	'$4 == "r1" { mine[$2] = 1 } $4 == "r2" && ($2 in mine) { found = 1 } END { exit !found }' \
	"$T/markers/begun"
echo "takeover after $((($(pg_now) - STOPPED) / 1000000)) ms"

rc=0
wait "$DEPLOY" || rc=$?
pd_eq "deploy --wait saw every action finish while r1 was stopped" 0 "$rc"
[ "$rc" = 0 ] || tail -n 5 "$T/deploy.out"

# Wake the zombie; await its rejoining the group (a further rebalance, and
# ready again) and its outbox empty: whatever it still meant to publish is
# published or dropped by then.
pg_resume 1
limit=$(($(date +%s) + 60))
settled=0
while [ "$(date +%s)" -lt "$limit" ]; do
	now_rebalances=$(pg_metric 1 postdeploy_consumer_rebalances_total)
	if [ -n "$now_rebalances" ] && [ "$now_rebalances" -gt "${REBALANCES:-0}" ] &&
		[ "$(pg_metric 1 postdeploy_outbox_records)" = 0 ] &&
		[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${PG_PORT[1]}/readyz")" = 200 ]; then
		settled=1
		break
	fi
	sleep 0.2
done
[ "$settled" = 1 ] || echo "r1: rebalances $(pg_metric 1 postdeploy_consumer_rebalances_total) (were ${REBALANCES:-0}), outbox $(pg_metric 1 postdeploy_outbox_records), readyz $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${PG_PORT[1]}/readyz")"
pd_eq "r1 rejoined the group with nothing left to publish" 1 "$settled"

pg_stop 1 || echo "note: r1 exited with status $?"
pg_stop 2 || echo "note: r2 exited with status $?"
pg_check --allow-interrupted --zombie r1 --since "$STOPPED"
pg_done
