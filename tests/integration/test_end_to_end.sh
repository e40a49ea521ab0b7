#!/usr/bin/env bash
# The whole flow on the real broker: 2 tenants x 3 actions (auto that
# succeeds, auto that fails, manual). deploy --auto --wait exits 1; the
# report shows each state in both formats; --one runs the manual action; a
# second --auto runs nothing that already succeeded.
source "$(dirname "$0")/lib.sh"
pd_require_broker
pd_action_script
pd_config <<INI
[action t.ok]
run = $T/act.sh ok {tenant} 0
auto = true
description = succeeds
[action t.fail]
run = $T/act.sh fail {tenant} 3
auto = true
[action t.manual]
run = $T/act.sh manual "{tenant}" 0
auto = false
INI
pd_reactor_start

rc=0; pd_cli deploy --auto --release 1.0.0 --tenant acme --tenant globex \
	--wait --timeout 90s >"$T/deploy1.out" 2>&1 || rc=$?
cat "$T/deploy1.out"
pd_eq "deploy --auto --wait exits 1 when an action fails" 1 "$rc"
for t in acme globex; do
	pd_eq "$t: t.ok ran once" 1 "$(pd_lines "$T/markers/$t.ok")"
	pd_eq "$t: t.fail ran once" 1 "$(pd_lines "$T/markers/$t.fail")"
	pd_eq "$t: the manual action did not run from --auto" 0 "$(pd_lines "$T/markers/$t.manual")"
done
pd_check "deploy prints each finished action" grep -q "t.fail.*FAILED (exit 3)" "$T/deploy1.out"

pd_report
state() { pd_state "$@"; }
for t in acme globex; do
	pd_eq "json: $t t.ok succeeded" succeeded "$(state $t t.ok state)"
	pd_eq "json: $t t.fail failed" failed "$(state $t t.fail state)"
	pd_eq "json: $t t.fail exit code" 3 "$(state $t t.fail exit_code)"
	pd_eq "json: $t t.fail error" "exited with status 3" "$(state $t t.fail error)"
	pd_eq "json: $t t.manual pending" pending "$(state $t t.manual state)"
	pd_eq "json: $t t.manual is manual" False "$(state $t t.manual auto)"
	pd_eq "json: $t t.ok release" 1.0.0 "$(state $t t.ok release)"
done
pd_check "json: the failure's output tail is there" \
	grep -q "something went wrong in fail" "$T/report.json"

pd_cli report --tenant acme >"$T/report.txt"
cat "$T/report.txt"
pd_check "table: one tenant only" bash -c "! grep -q globex '$T/report.txt'"
pd_check "table: pending auto is empty" grep -q "Pending auto (0)" "$T/report.txt"
pd_check "table: pending manual lists t.manual" bash -c "grep -A1 \"Pending manual (1)\" '$T/report.txt' | grep -q t.manual"
pd_check "table: failed lists t.fail with its error" \
	grep -q "error: exited with status 3" "$T/report.txt"
pd_check "table: completed lists t.ok" bash -c "grep -A1 \"Completed (1)\" '$T/report.txt' | grep -q t.ok"

rc=0; pd_cli deploy --one t.manual --tenant acme --release 1.0.1 --wait \
	--timeout 60s >"$T/deploy2.out" 2>&1 || rc=$?
pd_eq "deploy --one t.manual --wait exits 0" 0 "$rc"
pd_eq "acme: the manual action ran" 1 "$(pd_lines "$T/markers/acme.manual")"
pd_eq "globex: the manual action did not" 0 "$(pd_lines "$T/markers/globex.manual")"

rc=0; pd_cli deploy --auto --release 1.0.2 --all-tenants --wait \
	--timeout 60s >"$T/deploy3.out" 2>&1 || rc=$?
cat "$T/deploy3.out"
pd_eq "second --auto still fails (t.fail is pending again)" 1 "$rc"
for t in acme globex; do
	pd_eq "$t: t.ok did not run again" 1 "$(pd_lines "$T/markers/$t.ok")"
	pd_eq "$t: t.fail ran again" 2 "$(pd_lines "$T/markers/$t.fail")"
done
pd_eq "acme: manual action still ran once" 1 "$(pd_lines "$T/markers/acme.manual")"

pd_report
pd_eq "json: acme t.manual succeeded after --one" succeeded "$(state acme t.manual state)"
pd_eq "json: globex t.manual still pending" pending "$(state globex t.manual state)"
pd_eq "json: t.fail shows the newest release" 1.0.2 "$(state acme t.fail release)"

rc=0; pd_reactor_stop || rc=$?
pd_eq "the reactor stops cleanly on SIGTERM" 0 "$rc"
pd_check "state file is not world-readable" \
	bash -c "[ \"\$(stat -c %a '$T/state/state.db')\" = 600 ]"
pd_done
