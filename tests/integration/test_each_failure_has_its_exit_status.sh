#!/usr/bin/env bash
# Known problem 5: every error path exited 0, so CI could not tell that a
# post-deploy step failed. Here each kind of failure has its exit status.
source "$(dirname "$0")/lib.sh"
pd_require_broker
pd_action_script
pd_config <<INI
[action t.ok]
run = $T/act.sh ok {tenant} 0
auto = true
[action t.fails]
run = $T/act.sh fails {tenant} 2
auto = false
[action t.hangs]
run = /bin/sleep 60
auto = false
timeout = 300ms
INI
pd_reactor_start
pd_rc rc pd_cli deploy --auto --release 1 --tenant acme --wait --timeout 60s
pd_eq "all succeeded: 0" 0 "$rc"
pd_rc rc pd_cli deploy --one t.fails --release 1 --tenant acme --wait --timeout 60s
pd_eq "an action failed: 1" 1 "$rc"
pd_rc rc pd_cli deploy --one t.hangs --release 1 --tenant acme --wait --timeout 60s
pd_eq "an action timed out: 1" 1 "$rc"
pd_check "the timeout is reported" grep -q "TIMED_OUT" "$T/out"
pd_rc rc pd_cli deploy --one t.nope --release 1 --tenant acme --wait --timeout 60s
pd_eq "an unknown action: refused by the CLI, 2" 2 "$rc"
pd_check "the CLI names it" grep -q "unknown action 't.nope'" "$T/out"
pd_rc rc pd_cli deploy --one t.nope --no-check --release 1 --tenant acme --wait --timeout 60s
pd_eq "an unknown action sent anyway is rejected by the reactor: 1" 1 "$rc"
pd_check "the rejection is reported" grep -q "REJECTED.*unknown action 't.nope'" "$T/out"
pd_rc rc pd_cli deploy --auto --release 1 --tenant acme --wait --timeout 60s -b 127.0.0.1:1 \
	-X socket.connection.setup.timeout.ms=1000
pd_eq "broker unreachable: 4" 4 "$rc"
pd_reactor_stop
pd_rc rc pd_cli deploy --auto --release 1 --tenant acme --wait --timeout 1s
pd_eq "no reactor answers in time: 3" 3 "$rc"
pd_done
