#!/usr/bin/env bash
# What CI relies on when things go wrong: usage errors exit 2 with a clear
# message, an unreachable broker exits 4 quickly, a wait with no reactor
# exits 3, and a bad config names file:line.
source "$(dirname "$0")/lib.sh"
pd_require_broker
pd_config <<INI
[action t.ok]
run = /bin/true
auto = true
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
expect "-s reaches an action whose name has dots" 0 "OK, 1 action" \
	"$PD_BIN/postdeploy-reactor" -c "$T/postdeploy.ini" -s 'action t.ok.timeout=5m' --check
expect "-s with a bad action value names it" 2 "action 't.ok': timeout" \
	"$PD_BIN/postdeploy-reactor" -c "$T/postdeploy.ini" -s 'action t.ok.timeout=soon' --check
expect "-s with an empty property name" 2 "a property name is required" \
	"$PD_BIN/postdeploy-reactor" -c "$T/postdeploy.ini" -s 'kafka.=x' --check
expect "wait with no reactor" 3 "timed out" pd_cli deploy --auto --release 1 --wait --timeout 2s
expect "help documents --wait" 0 "--wait" "$PD_BIN/postdeploy" deploy --help
pd_done
