#!/usr/bin/env bash
# Known problem 4: import errors in an action module were swallowed, and two
# apps could register the same name with the later one silently winning.
# Here every such mistake stops start-up with an error naming file:line (or
# the plugin), and a missing executable is a recorded failure, not silence.
source "$(dirname "$0")/lib.sh"
pd_require_broker
R=$PD_BIN/postdeploy-reactor
expect_start_error() { # what pattern config-text
	printf '%s' "$3" >"$T/bad.ini"
	pd_rc rc "$R" -c "$T/bad.ini" --check
	pd_eq "$1: refused (exit 2)" 2 "$rc"
	pd_check "$1: says '$2'" grep -q -- "$2" "$T/out"
}
expect_start_error "duplicate action name" "bad.ini:3: action 'a.x' already defined at line 1" \
	$'[action a.x]\nrun = /bin/true\n[action a.x]\nrun = /bin/false\n'
expect_start_error "unterminated quote in run" "bad.ini:2: " \
	$'[action a.x]\nrun = /bin/echo "oops\n'
expect_start_error "after names an unknown action" "bad.ini:1: action 'a.x': after names unknown action 'a.y'" \
	$'[action a.x]\nrun = /bin/true\nafter = a.y\n'
expect_start_error "dependency cycle" "dependency cycle: a.x -> a.y -> a.x" \
	$'[action a.x]\nrun = /bin/true\nafter = a.y\n[action a.y]\nrun = /bin/true\nafter = a.x\n'
expect_start_error "unknown key" "bad.ini:2: " \
	$'[action a.x]\nrnu = /bin/true\n'
expect_start_error "plugin that cannot load" "plugin $T/missing.so" \
	"$(printf '[reactor]\nplugins = %s/missing.so\n' "$T")"

# A [kafka] property librdkafka does not take was let through by --check,
# and the start that followed made the state and a supervisor-* folder, then
# exited 1. librdkafka itself now judges every property, at --check and
# before start-up creates anything, and the CLI judges its own the same way.
kafka_error() { # what pattern config-text [reactor options...]
	local what=$1 pat=$2
	rm -rf "$T/k"
	printf '%s' "$3" >"$T/bad.ini"
	shift 3
	pd_rc rc "$R" -c "$T/bad.ini" "$@" --check
	pd_eq "$what: --check refuses it (exit 2)" 2 "$rc"
	pd_check "$what: --check says '$pat'" grep -qF -- "$pat" "$T/out"
	pd_rc rc timeout 30 "$R" -c "$T/bad.ini" "$@"
	pd_eq "$what: start-up refuses it (exit 2)" 2 "$rc"
	pd_check "$what: start-up says '$pat'" grep -qF -- "$pat" "$T/out"
	pd_check "$what: start-up leaves nothing on disk" \
		test -z "$(ls -A "$T/k" 2>/dev/null)"
}
ok_action=$'[action a.x]\nrun = /bin/true\n'
state_line="state = $T/k/state.db"
kafka_error "a misspelt [kafka] property" \
	'bad.ini:2: kafka.bootstrap.server: No such configuration property: "bootstrap.server"' \
	$'[kafka]\nbootstrap.server = '"$PD_BROKERS"$'\n[reactor]\n'"$state_line"$'\n'"$ok_action"
kafka_error "a [kafka] value librdkafka refuses" \
	'bad.ini:3: kafka.acks: Invalid value for configuration property' \
	$'[kafka]\nbootstrap.servers = '"$PD_BROKERS"$'\nacks = some\n[reactor]\n'"$state_line"$'\n'"$ok_action"
kafka_error "[kafka] properties that clash with the reactor's own" \
	'bad.ini: [kafka] for the producer: `acks` must be set to `all` when `enable.idempotence` is true' \
	$'[kafka]\nbootstrap.servers = '"$PD_BROKERS"$'\nacks = 1\n[reactor]\n'"$state_line"$'\n'"$ok_action"
kafka_error "a misspelt -X property" "kafka.socket.timeout: No such configuration property" \
	$'[reactor]\n'"$state_line"$'\n'"$ok_action"$'\n' -X socket.timeout=1
printf '[kafka]\nbootstrap.server = %s\n' "$PD_BROKERS" >"$T/cli.ini"
for cmd in "deploy --auto --release 1" "report" "actions"; do
	# shellcheck disable=SC2086
	pd_rc rc timeout 30 "$PD_BIN/postdeploy" $cmd -c "$T/cli.ini"
	pd_eq "postdeploy $cmd with a misspelt [kafka] property: exit 2" 2 "$rc"
	pd_check "postdeploy $cmd names the file, the line and the property" \
		grep -qF 'cli.ini:2: kafka.bootstrap.server: No such configuration property' "$T/out"
done

pd_config <<INI
[action t.missing]
run = $T/does-not-exist --flag
auto = true
INI
pd_reactor_start
pd_rc rc pd_cli deploy --auto --release 1 --tenant acme --wait --timeout 60s
pd_eq "a missing executable fails the deploy" 1 "$rc"
pd_report
pd_eq "it is recorded failed" failed "$(pd_state acme t.missing state)"
pd_eq "with exit code 127" 127 "$(pd_state acme t.missing exit_code)"
pd_check "with an error naming the executable" grep -q "cannot execute '$T/does-not-exist'" "$T/report.json"
pd_reactor_stop
pd_done
