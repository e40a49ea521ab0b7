#!/usr/bin/env bash
# What CI relies on when things go wrong: usage errors exit 2 with a clear
# message, an unreachable broker exits 4 quickly, a wait with no reactor
# exits 3, a bad config names file:line, and output that cannot be written
# (stdout on a full disk) exits 1 saying so instead of 0.
source "$(dirname "$0")/lib.sh"
pd_require_broker
pd_config <<INI
[action t.ok]
run = /bin/true
auto = true
[action t.chatty]
run = /bin/sh -c 'head -c 5000 /dev/zero | tr "\\0" x'
auto = false
INI

expect() { # expect "what" status pattern command...
	local what=$1 want=$2 pat=$3 rc=0; shift 3
	"$@" >"$T/out" 2>&1 || rc=$?
	pd_eq "$what: exit status" "$want" "$rc"
	pd_check "$what: says '$pat'" grep -q -- "$pat" "$T/out"
}
expect "no selection" 2 "exactly one of" pd_cli deploy --release 1
expect "two selections" 2 "exactly one of" pd_cli deploy --auto --all --release 1
expect "no release" 2 "release V is required" pd_cli deploy --auto
expect "bad tenant" 2 "not a valid tenant" pd_cli deploy --auto --release 1 --tenant '../etc'
expect "bad timeout" 2 "not a duration" pd_cli deploy --auto --release 1 --wait --timeout soon
expect "bad format" 2 "'table' or 'json'" pd_cli report --format xml
expect "unknown command" 2 "unknown command" "$PD_BIN/postdeploy" frobnicate
expect "unreachable broker" 4 "cannot reach Kafka" \
	"$PD_BIN/postdeploy" deploy --auto --release 1 -b 127.0.0.1:1 -X socket.connection.setup.timeout.ms=1000
expect "unreachable broker (report)" 4 "cannot reach Kafka" \
	"$PD_BIN/postdeploy" report -b 127.0.0.1:1 -X socket.connection.setup.timeout.ms=1000
expect "unreachable broker (actions)" 4 "cannot reach Kafka" \
	"$PD_BIN/postdeploy" actions -b 127.0.0.1:1 -X socket.connection.setup.timeout.ms=1000
printf '[reactor]\nworkers = many\n' >"$T/bad.ini"
expect "bad config value" 2 "bad.ini:2:" "$PD_BIN/postdeploy-reactor" -c "$T/bad.ini" --check
expect "-s reaches an action whose name has dots" 0 "OK, 2 action" \
	"$PD_BIN/postdeploy-reactor" -c "$T/postdeploy.ini" -s 'action t.ok.timeout=5m' --check
expect "-s with a bad action value names it" 2 "action 't.ok': timeout" \
	"$PD_BIN/postdeploy-reactor" -c "$T/postdeploy.ini" -s 'action t.ok.timeout=soon' --check
expect "-s with an empty property name" 2 "a property name is required" \
	"$PD_BIN/postdeploy-reactor" -c "$T/postdeploy.ini" -s 'kafka.=x' --check
expect "wait with no reactor" 3 "timed out" pd_cli deploy --auto --release 1 --wait --timeout 2s
expect "help documents --wait" 0 "--wait" "$PD_BIN/postdeploy" deploy --help

# Output into a full disk: every command that prints data exits 1 and says
# why. The report's rows carry 4 KiB output tails, so its JSON is over the
# 64 KiB block it writes in, and its table over stdio's buffer.
full() { # full "what" command...: run with stdout on /dev/full
	local what=$1 rc=0; shift
	"$@" >/dev/full 2>"$T/err" || rc=$?
	pd_eq "$what into a full disk: exit status" 1 "$rc"
	pd_check "$what into a full disk: says why" grep -qx \
		"postdeploy: cannot write output: No space left on device" "$T/err"
}
TENANTS=()
for i in $(seq -w 1 20); do TENANTS+=(--tenant "t$i"); done
pd_reactor_start
rc=0; pd_cli deploy --one t.chatty --release 1 "${TENANTS[@]}" --wait --timeout 60s \
	>"$T/deploy.out" 2>&1 || rc=$?
pd_eq "a deploy to 20 tenants (to have rows to print) exits 0" 0 "$rc"
rc=0; pd_cli report --format json >"$T/report.json" || rc=$?
pd_eq "the JSON report into a file exits 0" 0 "$rc"
pd_check "the JSON report is over 64 KiB" \
	test "$(wc -c <"$T/report.json")" -gt 65536
rc=0; pd_cli report >"$T/report.txt" || rc=$?
pd_eq "the table report into a file exits 0" 0 "$rc"
pd_check "the table report is over 4 KiB" test "$(wc -c <"$T/report.txt")" -gt 4096
full "report" pd_cli report
full "report --format json" pd_cli report --format json
full "report --tenant (a few lines)" pd_cli report --tenant t01
full "actions" pd_cli actions
full "actions --format json" pd_cli actions --format json
full "deploy --wait" pd_cli deploy --one t.chatty --release 2 --tenant t01 --wait --timeout 60s
full "deploy" pd_cli deploy --one t.chatty --release 3 --tenant t01
full "skip" pd_cli skip t.chatty --tenant t02
full "reset" pd_cli reset t.chatty --tenant t02
full "--help" "$PD_BIN/postdeploy" report --help
full "--version" "$PD_BIN/postdeploy" --version
# A failed command keeps its own status: output lost is no reason to say 0
# or to hide why it failed.
rc=0; pd_cli deploy --auto --release 4 --tenant t01 --wait --timeout 1ms \
	>/dev/full 2>"$T/err" || rc=$?
pd_eq "a timed-out wait into a full disk still exits 3" 3 "$rc"
rc=0; pd_reactor_stop || rc=$?
pd_eq "the reactor stops cleanly" 0 "$rc"
pd_done
