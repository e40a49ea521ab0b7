#!/usr/bin/env bash
# The report shows what the reactor will do: an action skipped because its
# dependency failed is pending, with that reason, and the next deploy plans
# it (a requested skip is done); skip and reset rows carry their reason and
# no made-up release or attempt; JSON's release is null when there is none;
# skip and reset --wait say what they do; a tenant named with --tenant that
# has no results is said so instead of being listed as all pending.
source "$(dirname "$0")/lib.sh"
pd_require_broker
pd_action_script
echo 1 >"$T/a.status"
pd_config <<INI
[action t.a]
run = sh -c "exec $T/act.sh a {tenant} \$(cat $T/a.status)"
auto = true
[action t.b]
run = $T/act.sh b {tenant} 0
auto = true
after = t.a
[action t.c]
run = $T/act.sh c {tenant} 0
auto = true
[action t.m]
run = $T/act.sh m {tenant} 0
auto = false
INI
# section TITLE FILE: the rows of one section of a table report.
section() {
	awk -v t="  $1 (" '/^  [A-Z]/ { on = index($0, t) == 1; next }
		on && /^    [^ ]/ { print $1 }' "$2"
}
# reason ACTION FILE: the line under ACTION's row that gives its reason.
reason() {
	awk -v a="$1" '$1 == a { on = 1; next } on && /^        [a-z]+:/ { print; exit }
		/^    [^ ]/ { on = 0 }' "$2" | sed 's/^ *//'
}

pd_reactor_start
pd_rc rc pd_cli deploy --auto --release 1 --tenant acme --wait --timeout 60s
pd_eq "t.a fails: deploy --wait exits 1" 1 "$rc"
pd_check "t.b is skipped for its dependency" grep -q "t.b .*SKIPPED.*dependency t.a FAILED" "$T/out"
pd_report
pd_eq "dependency-skipped: pending in JSON" pending "$(pd_state acme t.b state)"
pd_eq "with its reason" "dependency t.a FAILED" "$(pd_state acme t.b error)"
pd_cli report --tenant acme >"$T/table.txt"
pd_eq "pending auto in the table: the failed one's dependent" "t.b" \
	"$(section 'Pending auto' "$T/table.txt" | tr '\n' ' ' | sed 's/ $//')"
pd_eq "its reason, labelled as one" "reason: dependency t.a FAILED" \
	"$(reason t.b "$T/table.txt" | sed 's/ (.*//')"
pd_eq "completed: only what succeeded" "t.c" \
	"$(section Completed "$T/table.txt" | tr '\n' ' ' | sed 's/ $//')"

# What the report called pending is what the reactor plans next.
echo 0 >"$T/a.status"
pd_rc rc pd_cli deploy --auto --release 2 --tenant acme --wait --timeout 60s
pd_eq "the next deploy succeeds" 0 "$rc"
pd_check "and plans the failed action and its dependent: 2" \
	grep -q "^acme: 2 action(s) to run for release 2$" "$T/out"
pd_eq "t.b ran once, now" 1 "$(pd_lines "$T/markers/acme.b")"

# skip and reset: requests, not runs.
pd_rc rc pd_cli skip t.m --tenant acme --requested-by ops --wait --timeout 60s
pd_eq "skip --wait exits 0" 0 "$rc"
pd_check "skip --wait says what it does" grep -q "^acme: 1 action(s) to skip$" "$T/out"
pd_rc rc pd_cli reset t.c --tenant acme --requested-by ops --wait --timeout 60s
pd_eq "reset --wait exits 0" 0 "$rc"
pd_check "reset --wait says what it does" grep -q "^acme: 1 action(s) to reset$" "$T/out"
pd_cli report --tenant acme >"$T/table.txt"
pd_check "a skip row has no empty release" bash -c "! grep -q 'release ,' '$T/table.txt'"
pd_check "the skip row: state and time only" \
	grep -qE "^    t\.m +skipped +[0-9T:.-]+Z?$" "$T/table.txt"
pd_eq "the skip's reason, labelled as one" "reason: skipped on request of ops" \
	"$(reason t.m "$T/table.txt")"
pd_eq "the reset's reason, under pending" "reason: reset on request of ops" \
	"$(reason t.c "$T/table.txt" | sed 's/ (.*//')"
pd_check "no error: label for a request" bash -c "! grep -q 'error: .*on request of' '$T/table.txt'"
pd_report
pd_eq "a skip without --release: release null in JSON" None "$(pd_state acme t.m release)"
pd_eq "a reset without --release: release null in JSON" None "$(pd_state acme t.c release)"
pd_eq "a requested skip is done: skipped" skipped "$(pd_state acme t.m state)"
pd_eq "a never-run action: release null as well" None "$(pd_state globex t.m release)"
pd_reactor_stop

# A tenant never seen.
pd_rc rc pd_cli report --tenant acmee
pd_eq "report --tenant for a tenant without results exits 1" 1 "$rc"
pd_check "says so, with the known tenants" \
	grep -qx "postdeploy report: no results for tenant 'acmee' (known tenants: acme)" "$T/out"
pd_check "and lists nothing as pending" bash -c "! grep -q 'Pending' '$T/out'"
pd_rc rc pd_cli report --tenant acme --tenant acmee
pd_eq "one known, one not: exit 1" 1 "$rc"
pd_check "the known one is shown" grep -q "^Tenant acme$" "$T/out"
pd_check "the other is named" grep -q "no results for tenant 'acmee'" "$T/out"
pd_cli report --tenant acmee --format json >"$T/none.json" 2>/dev/null || rc=$?
pd_eq "JSON for it: an empty array" "[]" "$(cat "$T/none.json")"
pd_done
