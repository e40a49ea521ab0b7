#!/usr/bin/env bash
# skip records actions as done without running them; reset makes them
# pending again; both travel over Kafka and show in the report; names are
# checked against the registry.
source "$(dirname "$0")/lib.sh"
pd_require_broker
pd_action_script
pd_config <<INI
[action t.a]
run = $T/act.sh a {tenant} 0
auto = true
[action t.b]
run = $T/act.sh b {tenant} 0
auto = true
[action t.m]
run = $T/act.sh m {tenant} 0
auto = false
[action t.always]
run = $T/act.sh always {tenant} 0
auto = true
policy = always
INI
pd_reactor_start
pd_rc rc pd_cli skip t.a --tenant acme --wait --timeout 60s
pd_eq "skip --wait exits 0" 0 "$rc"
pd_report
pd_eq "skipped shows in the report" skipped "$(pd_state acme t.a state)"
pd_rc rc pd_cli deploy --auto --release 1 --tenant acme --wait --timeout 60s
pd_eq "deploy after skip" 0 "$rc"
pd_eq "a skipped action does not run" 0 "$(pd_lines "$T/markers/acme.a")"
pd_eq "the others do" 1 "$(pd_lines "$T/markers/acme.b")"

pd_rc rc pd_cli reset t.a t.b --tenant acme --wait --timeout 60s
pd_eq "reset --wait exits 0" 0 "$rc"
pd_report
pd_eq "reset: t.a pending again" pending "$(pd_state acme t.a state)"
pd_eq "reset: t.b pending again" pending "$(pd_state acme t.b state)"
pd_rc rc pd_cli deploy --auto --release 2 --tenant acme --wait --timeout 60s
pd_eq "after reset both run" "1 2" "$(pd_lines "$T/markers/acme.a") $(pd_lines "$T/markers/acme.b")"

pd_rc rc pd_cli skip --all-pending --tenant globex --wait --timeout 60s
pd_eq "skip --all-pending exits 0" 0 "$rc"
pd_report
pd_eq "--all-pending skips auto actions" skipped "$(pd_state globex t.b state)"
pd_eq "--all-pending skips manual actions" skipped "$(pd_state globex t.m state)"
pd_eq "--all-pending leaves always-actions pending" pending "$(pd_state globex t.always state)"
pd_rc rc pd_cli deploy --all --release 3 --tenant globex --wait --timeout 60s
pd_eq "after skipping everything only the always-action runs" \
	"0 0 1" "$(pd_lines "$T/markers/globex.a") $(pd_lines "$T/markers/globex.m") $(pd_lines "$T/markers/globex.always")"

pd_rc rc pd_cli reset --all --tenant globex --wait --timeout 60s
pd_eq "reset --all exits 0" 0 "$rc"
pd_report
pd_eq "reset --all: skipped ones pending again" pending "$(pd_state globex t.m state)"

pd_rc rc pd_cli skip t.nope --tenant acme
pd_eq "skip of an unknown name is refused" 2 "$rc"
pd_check "and named" grep -q "unknown action 't.nope'" "$T/out"
pd_rc rc pd_cli skip --tenant acme
pd_eq "skip without names nor --all-pending is a usage error" 2 "$rc"
pd_rc rc pd_cli reset t.a --all --tenant acme
pd_eq "reset with names and --all is a usage error" 2 "$rc"
pd_rc rc pd_cli skip --auto t.a
pd_eq "--auto is not a skip option" 2 "$rc"

printf 'acme\n# a comment\n\nglobex  \n' >"$T/tenants.txt"
pd_rc rc pd_cli deploy --auto --release 4 --tenants-file "$T/tenants.txt" --wait --timeout 60s
pd_eq "--tenants-file deploys to every tenant listed" 0 "$rc"
pd_eq "two events published" 2 "$(grep -c '^published' "$T/out")"
printf 'acme\nnot/valid\n' >"$T/bad-tenants.txt"
pd_rc rc pd_cli deploy --auto --release 4 --tenants-file "$T/bad-tenants.txt"
pd_eq "a bad tenants file is refused" 2 "$rc"
pd_check "naming file:line" grep -q "bad-tenants.txt:2: 'not/valid'" "$T/out"

pd_cli actions >"$T/actions.txt"
pd_check "actions lists every action with auto/manual and policy" \
	grep -q "t.always .*auto .*always" "$T/actions.txt"
pd_reactor_stop
pd_done
