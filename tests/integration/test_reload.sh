#!/usr/bin/env bash
# SIGHUP reloads the config without dropping work: an action added to the
# file is registered and runs; an action running during the reload finishes
# and is recorded; a broken file is refused with file:line and the running
# config stays.
source "$(dirname "$0")/lib.sh"
pd_require_broker
pd_action_script
cat >"$T/block.sh" <<'SH'
#!/bin/sh
echo started >"$MARKERS/$1.started"
read _ <"$MARKERS/$1.release"
echo done >>"$MARKERS/$1.block"
SH
chmod +x "$T/block.sh"
pd_config <<INI
[action t.a]
run = $T/act.sh a {tenant} 0
auto = true
[action t.block]
run = $T/block.sh {tenant}
auto = false
INI
mkfifo "$T/markers/acme.started" "$T/markers/acme.release"
pd_reactor_start
pd_rc rc pd_cli deploy --auto --release 1 --tenant acme --wait --timeout 60s
pd_eq "before the reload" 0 "$rc"

# A run in flight when SIGHUP arrives.
pd_cli deploy --one t.block --release 1 --tenant acme >/dev/null
read -r -t 60 _ <>"$T/markers/acme.started" || pd_die "t.block never started"
cat >>"$T/postdeploy.ini" <<INI
[action t.new]
run = $T/act.sh new {tenant} 0
auto = true
INI
kill -HUP "$PD_REACTOR_PID"
timeout 60 grep -m1 -q "reloading the config" <(tail -n +1 -f "$T/reactor.log")
pd_eq "the reactor starts reloading" 0 "$?"
pd_check "and waits for the running action (no swap yet)" bash -c "! grep -q 'config reloaded' '$T/reactor.log'"
echo go >"$T/markers/acme.release"
timeout 60 grep -m1 -q "config reloaded: 3 action(s)" <(tail -n +1 -f "$T/reactor.log")
pd_eq "it swaps once the action is done" 0 "$?"
pd_report
pd_eq "the action that ran during the reload was recorded" succeeded "$(pd_state acme t.block state)"
pd_rc rc pd_cli deploy --auto --release 2 --tenant acme --wait --timeout 60s
pd_eq "the new action runs" 1 "$(pd_lines "$T/markers/acme.new")"
pd_eq "the old one does not run again" 1 "$(pd_lines "$T/markers/acme.a")"
pd_cli actions --format json >"$T/actions.json"
pd_check "the registry lists the new action" grep -q '"action": "t.new"' "$T/actions.json"

# The mode is the one it started in: its clients, transactions and offsets
# are made for it, so shared_group waits for the next start.
sed -i "s|^\[reactor\]|[reactor]\nshared_group = true\nlease = 2s|" "$T/postdeploy.ini"
kill -HUP "$PD_REACTOR_PID"
timeout 60 grep -m2 "config reloaded" <(tail -n +1 -f "$T/reactor.log") | tail -n 1 | grep -q .
pd_eq "a reload that turns shared_group on is taken" 0 "$?"
pd_check "but shared_group waits for the next start" \
	grep -q "reload: reactor.shared_group changes at the next start" "$T/reactor.log"
sed -i -e "/^shared_group = true$/d" -e "/^lease = 2s$/d" "$T/postdeploy.ini"

# A broken file: refused, the running config stays. (The CLI keeps a good
# copy: it reads the same file.)
cp "$T/postdeploy.ini" "$T/cli.ini"
printf '[action t.bad]\nrun = "unterminated\n' >>"$T/postdeploy.ini"
kill -HUP "$PD_REACTOR_PID"
timeout 60 grep -m1 -q "config reload failed" <(tail -n +1 -f "$T/reactor.log")
pd_eq "a broken file is refused" 0 "$?"
pd_check "naming file:line" grep -q "config reload failed, the running config stays: $T/postdeploy.ini:[0-9]*:" "$T/reactor.log"
pd_rc rc "$PD_BIN/postdeploy" deploy --one t.new --release 3 --tenant globex --wait --timeout 60s -c "$T/cli.ini"
pd_eq "the running config still works" 0 "$rc"
rc=0; pd_reactor_stop || rc=$?
pd_eq "and it stops cleanly" 0 "$rc"
# Counted once the reactor has stopped, so no later copy can be missed: one
# SIGHUP, one error, whatever logger would repeat it.
pd_eq "the failed reload is logged once" 1 "$(grep -c 'config reload failed' "$T/reactor.log")"
pd_eq "its reason appears once in the log" 1 "$(grep -c 'unterminated double quote' "$T/reactor.log")"
pd_done
