#!/usr/bin/env bash
# Known problem 1 of django_post_deploy: a global lock — while any action is
# "running" every deploy refuses to start, and a killed worker leaves a row
# "running" forever. Here: a running action holds up no other tenant, and a
# reactor killed mid-run blocks nothing after a restart; the cut-short run
# is recorded INTERRUPTED and runs again.
source "$(dirname "$0")/lib.sh"
pd_require_broker
pd_action_script
# block.sh: says it started (a FIFO the test reads), then waits for a line on
# its tenant's release FIFO, then appends its marker.
cat >"$T/block.sh" <<'SH'
#!/bin/sh
echo $$ >"$MARKERS/$1.block.pid"
echo started >"$MARKERS/$1.started"
read line <"$MARKERS/$1.release"
echo "block $1" >>"$MARKERS/$1.block"
SH
chmod +x "$T/block.sh"
pd_config <<INI
[action t.block]
run = $T/block.sh {tenant}
auto = false
[action t.ok]
run = $T/act.sh ok {tenant} 0
auto = true
INI
mkfifo "$T/markers/acme.started" "$T/markers/acme.release"
pd_reactor_start

pd_cli deploy --one t.block --tenant acme --release 1 >/dev/null
read -r -t 60 _ <>"$T/markers/acme.started" || pd_die "t.block never started"

pd_rc rc pd_cli deploy --auto --release 1 --tenant globex --wait --timeout 60s
pd_eq "another tenant deploys while acme's action runs" 0 "$rc"
pd_eq "globex's action ran" 1 "$(pd_lines "$T/markers/globex.ok")"
pd_eq "acme's action is still running" 0 "$(pd_lines "$T/markers/acme.block")"

# The machine goes down: the reactor, its action supervisor and the action
# die at once, leaving a run that never finished.
kill -KILL "$PD_REACTOR_PID"; wait "$PD_REACTOR_PID" 2>/dev/null || true
PD_REACTOR_PID=
pkill -KILL -f -- "--supervisor $T/state/" || true
kill -KILL "$(cat "$T/markers/acme.block.pid")"
pd_reactor_start

pd_rc rc pd_cli deploy --auto --release 2 --tenant initech --wait --timeout 60s
pd_eq "after a crash mid-run, deploys still go through" 0 "$rc"

# The event that was cut short is redelivered and t.block runs again.
read -r -t 60 _ <>"$T/markers/acme.started" || pd_die "t.block did not run again"
echo go >"$T/markers/acme.release"
pd_rc rc pd_cli deploy --one t.ok --tenant acme --release 2 --wait --timeout 60s
pd_eq "acme's next deploy ran after its action finished" 0 "$rc"
pd_eq "t.block finished once, after the restart" 1 "$(pd_lines "$T/markers/acme.block")"
pd_report
pd_eq "report: acme t.block succeeded" succeeded "$(pd_state acme t.block state)"
# Since 2026-12-05 the store holds no row of a command before it ends: the
# redelivered event sends the same START, and the new supervisor, which
# found the dead one's STARTED record without an outcome, answers it
# INTERRUPTED; the worker records that and runs it again.
pd_check "the cut-short run was recorded INTERRUPTED" \
	grep -q "acme t.block attempt 1: INTERRUPTED: interrupted: the supervisor running it died" "$T/reactor.log"
pd_reactor_stop
pd_done
