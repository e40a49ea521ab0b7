#!/usr/bin/env bash
# pause holds new runs of a tenant (or of every tenant) until resume: what
# comes waits, in order; the report and deploy --wait say paused; the pause
# outlives a reactor restart; resume runs what was held.
source "$(dirname "$0")/lib.sh"
pd_require_broker
pd_action_script
pd_config <<INI
[action t.a]
run = $T/act.sh a {tenant} 0
auto = true
INI
# One worker: a held event must not take it from the other tenants.
sed -i 's/^workers = .*/workers = 1/' "$T/postdeploy.ini"
pd_reactor_start

pd_rc rc pd_cli pause --tenant acme --requested-by tester --wait --timeout 60s
pd_eq "pause --wait exits 0" 0 "$rc"
pd_check "and says the tenant is paused" grep -q "^acme: paused" "$T/out"

pd_cli deploy --auto --release 1 --tenant acme >/dev/null
pd_rc rc pd_cli deploy --auto --release 1 --tenant globex --wait --timeout 60s
pd_eq "another tenant is not held" 0 "$rc"
pd_eq "it ran there" 1 "$(pd_lines "$T/markers/globex.a")"
# A wait on the paused tenant says why nothing comes, until its timeout.
pd_rc rc pd_cli deploy --auto --release 2 --tenant acme --wait --timeout 5s
pd_eq "deploy --wait on a paused tenant times out" 3 "$rc"
pd_check "saying it is paused, and by whom" \
	grep -q "acme: paused by tester: its actions wait for \`postdeploy resume\`" "$T/out"
pd_eq "nothing ran for the paused tenant" 0 "$(pd_lines "$T/markers/acme.a")"
pd_report
pd_eq "report (JSON): paused_by" tester "$(pd_state acme t.a paused_by)"
pd_cli report >"$T/table.txt"
pd_check "report (table): paused" grep -q "paused by tester: new runs wait" "$T/table.txt"
pd_check "the other tenant's rows are not paused" bash -c "! grep -q paused_by <(python3 -c '
import json; print([r for r in json.load(open(\"$T/report.json\")) if r[\"tenant\"] == \"globex\"])')"

# The pause outlives a restart: the events come again and wait again.
pd_reactor_stop
pd_reactor_start
pd_rc rc pd_cli deploy --auto --release 3 --tenant acme --wait --timeout 5s
pd_eq "after a restart the tenant is still paused" 3 "$rc"
pd_check "and --wait says so" grep -q "acme: paused by tester" "$T/out"
pd_eq "nothing ran after the restart" 0 "$(pd_lines "$T/markers/acme.a")"

pd_rc rc pd_cli resume --tenant acme --requested-by tester --wait --timeout 60s
pd_eq "resume --wait exits 0" 0 "$rc"
pd_check "and says resumed" grep -q "^acme: resumed" "$T/out"
# The held events run in order behind this one's turn: its wait ends once
# they have.
pd_rc rc pd_cli deploy --auto --release 4 --tenant acme --wait --timeout 60s
pd_eq "after the resume a deploy goes through" 0 "$rc"
pd_eq "the first held deploy ran the action, once" "a acme 1" "$(cat "$T/markers/acme.a")"
pd_report
pd_eq "report: not paused any more" - "$(python3 -c '
import json, sys
r = [r for r in json.load(open(sys.argv[1])) if r["tenant"] == "acme"][0]
print(r.get("paused_by", "-"))' "$T/report.json")"

# For incidents: every tenant, those no config lists included.
pd_rc rc pd_cli pause --all-tenants --requested-by oncall --wait --timeout 60s
pd_eq "pause --all-tenants --wait exits 0" 0 "$rc"
pd_check "and says every tenant is paused" grep -q "^every tenant: paused" "$T/out"
pd_rc rc pd_cli deploy --one t.a --release 5 --tenant initech --wait --timeout 5s
pd_eq "a tenant in no list is held too" 3 "$rc"
pd_check "--wait says every tenant is paused" grep -q "every tenant: paused by oncall" "$T/out"
pd_eq "nothing ran for it" 0 "$(pd_lines "$T/markers/initech.a")"
pd_report
pd_eq "report: every tenant paused" oncall "$(pd_state globex t.a paused_by)"
pd_rc rc pd_cli resume --all-tenants --wait --timeout 60s
pd_eq "resume --all-tenants --wait exits 0" 0 "$rc"
pd_rc rc pd_cli deploy --one t.a --release 6 --tenant initech --wait --timeout 60s
pd_eq "after the resume the held run and the new one ran" "0 2" "$rc $(pd_lines "$T/markers/initech.a")"

pd_rc rc pd_cli pause t.a --tenant acme
pd_eq "a pause names no action" 2 "$rc"
pd_rc rc pd_cli pause --all-tenants --tenant acme
pd_eq "--all-tenants with --tenant is a usage error" 2 "$rc"
pd_reactor_stop
pd_done
