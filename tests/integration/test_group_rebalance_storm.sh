#!/usr/bin/env bash
# Issue 11: a rebalance storm. For a minute, reactors r2..r4 join and leave
# every few seconds (started, SIGTERMed, killed with kill -9) beside r1,
# while deploys of new tenants keep arriving. Then every reactor comes back
# (a killed one adopts what its supervisor still ran), the work finishes,
# and the checker holds: every once-action finished exactly once, never two
# runs of one (tenant, action) at once, one committed SUCCEEDED each, and
# the report agrees. A run the supervisor's lease stopped (its reactor was
# killed and stayed away) began and never finished: allowed.
#
# PD_STORM_SECONDS (default 60) and PD_STORM_SEED (default: random,
# printed) replay a storm.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_group.sh"
pd_require_broker
: "${PD_STORM_SECONDS:=60}"
: "${PD_STORM_SEED:=$RANDOM}"
RANDOM=$PD_STORM_SEED
echo "storm seed $PD_STORM_SEED (PD_STORM_SEED=$PD_STORM_SEED replays it)"
PG_WORKERS=2
pg_mark_script
pg_config <<INI
[action s.one]
run = $T/mark.sh {tenant} s.one
auto = true
[action s.two]
run = $T/mark.sh {tenant} s.two
auto = true
after = s.one
[action s.three]
run = $T/mark.sh {tenant} s.three
auto = true
INI

pg_start 1
# Deploys keep coming: a batch of 4 new tenants every 2 s for the storm's
# length (the pacing of the load, not a wait for anything).
batches=$((PD_STORM_SECONDS / 2))
for ((b = 0; b < batches; b++)); do
	seq -f "st${b}x%02.0f" 1 4 >"$T/batch-$b.txt"
	pg_expect 4.0.0 s.one s.two s.three <"$T/batch-$b.txt"
done
(
	for ((b = 0; b < batches; b++)); do
		pd_cli deploy --auto --release 4.0.0 --tenants-file "$T/batch-$b.txt" \
			>>"$T/deploys.out" 2>&1 || echo "deploy of batch $b failed" >>"$T/deploys.out"
		sleep 2
	done
) &
DEPLOYS=$!

# The storm: every 2-4 s one of r2..r4 changes: a stopped one starts, a
# running one is SIGTERMed or killed.
end=$(($(date +%s) + PD_STORM_SECONDS))
changes=0
while [ "$(date +%s)" -lt "$end" ]; do
	n=$((2 + RANDOM % 3))
	if [ -z "${PG_PID[$n]:-}" ]; then
		echo "$(date +%T) r$n joins"
		pg_start "$n" --no-wait
	elif [ $((RANDOM % 2)) = 0 ]; then
		echo "$(date +%T) r$n leaves (SIGTERM)"
		pg_stop "$n" || echo "note: r$n exited with status $?"
	else
		echo "$(date +%T) r$n is killed (kill -9)"
		pg_kill "$n"
	fi
	changes=$((changes + 1))
	sleep $((2 + RANDOM % 3))
done
wait "$DEPLOYS"
pd_check "every deploy was published" bash -c "! grep -q failed '$T/deploys.out'"
echo "$changes changes to the group; every reactor comes back"
for n in 2 3 4; do
	[ -n "${PG_PID[$n]:-}" ] || pg_start "$n" --no-wait
done
pd_check "the work finishes within 120 s of the storm" pg_await_report 120
pg_list
for n in 1 2 3 4; do
	pg_stop "$n" || echo "note: r$n exited with status $?"
done
pg_check --allow-interrupted
pg_done
