#!/usr/bin/env bash
# The supervisor's lease (shared-group mode): a reactor that is silent for
# longer than its lease while its command actions run (SIGSTOP keeps its
# sockets open) has them stopped by its supervisor, process group and all,
# and recorded INTERRUPTED "reactor silent past its lease (2 s)"; a reactor
# stopped for less than the lease finds its run going on, and it succeeds
# once. The lease is `[reactor] lease`, which only a shared group uses.
source "$(dirname "$0")/lib.sh"
pd_require_broker
LEASE_S=2
GRACE_S=2 # SIGTERM, then SIGKILL this long after (runner.c)
cat >"$T/long.sh" <<'SH'
#!/bin/sh
# usage: long.sh TENANT SECONDS: one line per run, then its pid (its
# process group's id) for the test, then a sleep in a child of its own.
echo "$1 $$" >>"$MARKERS/$1.runs"
echo "$$" >"$MARKERS/$1.pid"
sleep "$2"
echo done >>"$MARKERS/$1.done"
SH
chmod +x "$T/long.sh"
PD_REACTOR_LINES="shared_group = true
lease = ${LEASE_S}s"
pd_config <<INI
[action t.long]
run = $T/long.sh {tenant} {param.seconds}
params = seconds
INI

# Waits up to $2 s for file $1 to hold a line; prints it.
await_line() {
	local end=$((SECONDS + $2))
	while [ $SECONDS -lt "$end" ]; do
		if [ -s "$1" ]; then head -n 1 "$1"; return 0; fi
		sleep 0.05
	done
	return 1
}

# Waits up to $3 s for the report to show state $2 for tenant $1's t.long.
await_state() {
	local end=$((SECONDS + $3))
	while [ $SECONDS -lt "$end" ]; do
		pd_report
		[ "$(pd_state "$1" t.long state)" = "$2" ] && return 0
		sleep 0.2
	done
	return 1
}

# Whether process group $1 has a process that is not a zombie (an orphaned
# child of the action waits for pid 1 to reap it, which may take a while).
group_alive() {
	ps -eo pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { n++ } END { exit !n }'
}

pd_reactor_start

# 1. Stopped past the lease: the run's whole group is gone within lease +
#    grace (+ a margin for the poll loops), while the reactor is still stopped.
pd_cli deploy --one t.long --param seconds=60 --release 1 --tenant acme >/dev/null
pgid=$(await_line "$T/markers/acme.pid" 60) || pd_die "t.long never started for acme"
kill -STOP "$PD_REACTOR_PID"
t0=$(date +%s%N)
deadline=$((SECONDS + LEASE_S + GRACE_S + 6))
group_alive "$pgid" || pd_die "no process group $pgid"
while group_alive "$pgid" && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
gone_ms=$((($(date +%s%N) - t0) / 1000000))
pd_check "the action's process group is gone while the reactor is stopped" \
	test "$(group_alive "$pgid" && echo alive)" = ""
echo "     (gone ${gone_ms} ms after SIGSTOP; lease ${LEASE_S} s, grace ${GRACE_S} s)"
# The last ping may have come a quarter of the lease (and a loop turn)
# before the stop.
pd_check "not before the lease passed (${gone_ms} ms)" test "$gone_ms" -ge $((LEASE_S * 1000 * 3 / 4 - 100))
kill -CONT "$PD_REACTOR_PID"
pd_check "the supervisor says why" grep -q "past its lease of $((LEASE_S * 1000)) ms: stopping its 1 run(s)" \
	"$T/state/supervisor-"*/supervisor.log
await_state acme interrupted 60 || true
pd_eq "report: the run is interrupted" interrupted "$(pd_state acme t.long state)"
pd_eq "report: with the lease as the reason" "reactor silent past its lease (${LEASE_S} s)" \
	"$(pd_state acme t.long error)"
pd_eq "the action never finished" 0 "$(pd_lines "$T/markers/acme.done")"

# 2. Stopped for less than the lease: the run goes on (the reactor pings
#    its supervisor from its main loop, so a run of 3 leases is not cut).
pd_cli deploy --one t.long --param seconds=$((3 * LEASE_S)) --release 2 --tenant globex >/dev/null
await_line "$T/markers/globex.pid" 60 >/dev/null || pd_die "t.long never started for globex"
kill -STOP "$PD_REACTOR_PID"
sleep 1 # the stop itself, shorter than the lease, is what is tested
kill -CONT "$PD_REACTOR_PID"
await_state globex succeeded 60 || true
pd_eq "report: the run stopped within its lease succeeded" succeeded "$(pd_state globex t.long state)"
pd_eq "it ran once" 1 "$(pd_lines "$T/markers/globex.runs")"
pd_eq "and finished once" 1 "$(pd_lines "$T/markers/globex.done")"
# By now acme's interrupted run would have been started again, had it been
# taken for a run its supervisor lost.
pd_eq "acme's cut run was not started again" 1 "$(pd_lines "$T/markers/acme.runs")"

rc=0; pd_reactor_stop || rc=$?
pd_eq "the reactor stops cleanly" 0 "$rc"
pd_done
