#!/usr/bin/env bash
# Issue 11: reactors that share the group share the tenants, and "once"
# holds while the group changes under the work. 60 tenants x 5 once-actions
# (0.2 s each, two `after` chains) deployed at once; one reactor starts the
# work, two more join mid-run, one of them is killed (kill -9) and started
# again, a fourth joins, one leaves with SIGTERM. Then: every once-action
# ran to its end exactly once (the markers the actions write), no two runs
# of one (tenant, action) at once (the overlap detector), one committed
# SUCCEEDED per (tenant, action) on the results topic, and the report
# agrees.
#
# PD_GROUP_SOLO=1 runs the same work on one reactor and changes nothing in
# the group: it proves the harness and the checker on any build.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_group.sh"
pd_require_broker
: "${PD_GROUP_SOLO:=0}"
# 2 workers a reactor: one reactor alone needs ~30 s for the 300 runs, time
# for every change of the group to happen while work is left.
PG_WORKERS=2
pg_mark_script
pg_config <<INI
[action g.a1]
run = $T/mark.sh {tenant} g.a1
auto = true
[action g.a2]
run = $T/mark.sh {tenant} g.a2
auto = true
after = g.a1
[action g.a3]
run = $T/mark.sh {tenant} g.a3
auto = true
after = g.a2
[action g.a4]
run = $T/mark.sh {tenant} g.a4
auto = true
[action g.a5]
run = $T/mark.sh {tenant} g.a5
auto = true
after = g.a4
INI
seq -f 'tenant%02.0f' 0 59 >"$T/tenants.txt"
pg_expect 2.0.0 g.a1 g.a2 g.a3 g.a4 g.a5 <"$T/tenants.txt"
TOTAL=$(wc -l <"$T/expected")

pg_start 1
pd_cli deploy --auto --release 2.0.0 --tenants-file "$T/tenants.txt" \
	--wait --timeout 170s >"$T/deploy.out" 2>&1 &
DEPLOY=$!

# Each change waits for the work to have come that far (finished marker
# lines), so it happens while work is left, whatever the machine's speed.
step() { # step RUNS WHAT
	pg_await_runs "$1" 150 || pd_die "only $(pd_lines "$T/markers/runs") runs finished before: $2"
	[ "$(pd_lines "$T/markers/runs")" -lt "$TOTAL" ] ||
		echo "note: the work was done before: $2"
	echo "after $(pd_lines "$T/markers/runs") of $TOTAL runs: $2"
}
if [ "$PD_GROUP_SOLO" = 1 ]; then
	echo "PD_GROUP_SOLO=1: one reactor does all the work"
else
	step 20 "r2 and r3 join"
	pg_start 2 --no-wait
	pg_start 3 --no-wait
	pg_await_ready 2 || pd_die "r2 did not join"
	pg_await_ready 3 || pd_die "r3 did not join"
	step 70 "r2 is killed (kill -9) and started again"
	pg_kill 2
	pg_start 2
	step 130 "r4 joins"
	pg_start 4
	step 170 "r3 leaves (SIGTERM)"
	pg_stop 3 || echo "note: r3 exited with status $?"
fi
pg_list

rc=0
wait "$DEPLOY" || rc=$?
pd_eq "deploy --wait saw every action finish" 0 "$rc"
[ "$rc" = 0 ] || tail -n 5 "$T/deploy.out"
# Stopped before the check, so that nothing is published while it reads.
for n in "${!PG_PID[@]}"; do
	[ -n "${PG_PID[$n]}" ] || continue
	pg_stop "$n" || echo "note: r$n exited with status $?"
done
pd_eq "every once-action's marker is there" "$TOTAL" "$(sort -u -k1,2 "$T/markers/runs" | wc -l)"
# A run the supervisor's lease stopped (r2 was away longer than 2 s) began
# and never finished: allowed; its action then ran once, to its end.
pg_check --allow-interrupted
pg_done
