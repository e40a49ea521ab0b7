#!/usr/bin/env bash
# SIGTERM while an action runs: the reactor stops taking events, gives the
# action shutdown_grace to finish, then interrupts it and records it
# INTERRUPTED, flushes, commits and exits 0; the next start runs the cut-short
# action again, and an action that finishes within the grace is kept.
source "$(dirname "$0")/lib.sh"
pd_require_broker
cat >"$T/block.sh" <<'SH'
#!/bin/sh
echo started >"$MARKERS/$1.started"
read _ <"$MARKERS/$1.release"
echo done >>"$MARKERS/$1.block"
SH
chmod +x "$T/block.sh"
pd_config <<INI
[action t.block]
run = $T/block.sh {tenant}
auto = true
INI
sed -i "s|^shutdown_grace = .*|shutdown_grace = 1s|" "$T/postdeploy.ini"
mkfifo "$T/markers/acme.started" "$T/markers/acme.release" "$T/markers/globex.started" "$T/markers/globex.release"
pd_reactor_start

# 1. The action outlasts the grace: interrupted, then re-run after restart.
pd_cli deploy --auto --release 1 --tenant acme >/dev/null
read -r -t 60 _ <>"$T/markers/acme.started" || pd_die "t.block never started"
rc=0; pd_reactor_stop || rc=$?
pd_eq "SIGTERM during a run: exit 0" 0 "$rc"
pd_check "it waited for the grace, then interrupted" grep -q "shutdown grace over: interrupting running actions" "$T/reactor.log"
pd_report
pd_eq "the run is recorded interrupted" interrupted "$(pd_state acme t.block state)"
pd_reactor_start
read -r -t 60 _ <>"$T/markers/acme.started" || pd_die "t.block did not run again after the restart"
echo go >"$T/markers/acme.release"
pd_rc rc pd_cli deploy --auto --release 2 --tenant acme --wait --timeout 60s
pd_eq "after the restart it ran again and succeeded" 1 "$(pd_lines "$T/markers/acme.block")"
pd_report
pd_eq "report: succeeded" succeeded "$(pd_state acme t.block state)"

# 2. The action finishes within the grace: its outcome is kept.
pd_cli deploy --auto --release 3 --tenant globex >/dev/null
read -r -t 60 _ <>"$T/markers/globex.started" || pd_die "globex's t.block never started"
kill -TERM "$PD_REACTOR_PID"
echo go >"$T/markers/globex.release"
rc=0; wait "$PD_REACTOR_PID" || rc=$?; PD_REACTOR_PID=
pd_eq "stops cleanly after the action finished in its grace" 0 "$rc"
pd_report
pd_eq "its success was recorded" succeeded "$(pd_state globex t.block state)"
pd_reactor_start
pd_rc rc pd_cli deploy --auto --release 4 --tenant globex --wait --timeout 60s
pd_eq "and it does not run again" 1 "$(pd_lines "$T/markers/globex.block")"
pd_reactor_stop
pd_done
