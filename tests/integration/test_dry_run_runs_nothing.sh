#!/usr/bin/env bash
# deploy --dry-run: the reactor plans the event as a real one and answers
# with what would run (in run order) and what would not, and why; nothing
# runs, nothing is recorded as run, and the report does not change. A real
# deploy afterwards runs what the dry run said it would.
source "$(dirname "$0")/lib.sh"
pd_require_broker
pd_action_script
pd_config <<INI
[action t.done]
run = $T/act.sh done {tenant} 0
auto = true
[action t.second]
run = $T/act.sh second {tenant} 0
auto = true
after = t.first
[action t.first]
run = $T/act.sh first {tenant} 0
auto = true
[action t.manual]
run = $T/act.sh manual {tenant} 0
auto = false
INI
pd_reactor_start
pd_rc rc pd_cli deploy --one t.done --release 1 --tenant acme --wait --timeout 60s
pd_eq "t.done succeeds first" 0 "$rc"
pd_report
cp "$T/report.json" "$T/report.before.json"

t0=$(date +%s%N)
pd_rc rc pd_cli deploy --auto --dry-run --release 2 --tenant acme --tenant globex --timeout 60s
echo "# deploy --dry-run took $(( ($(date +%s%N) - t0) / 1000000 )) ms"
pd_eq "deploy --dry-run exits 0" 0 "$rc"
cat "$T/out"
pd_check "t.first would run first (t.second runs after it)" \
	grep -Eq "^acme: +1\. t\.first would run$" "$T/out"
pd_check "then t.second" grep -Eq "^acme: +2\. t\.second would run$" "$T/out"
pd_check "t.done would not: it already succeeded" \
	grep -Eq "^acme: +- +t\.done would not run: already succeeded$" "$T/out"
pd_check "t.manual would not: --auto takes auto actions only" \
	grep -Eq "^acme: +- +t\.manual would not run: not auto$" "$T/out"
pd_check "globex, which ran nothing yet, would run t.done too" \
	grep -Eq "^globex: +dry run: 3 action\(s\) would run for release 2, 1 would not$" "$T/out"
pd_check "the summary says nothing ran" grep -q "^dry run: 2 tenant(s) planned, nothing ran$" "$T/out"
pd_check "the reactor's log says it ran none" grep -q "would run (dry run: none runs)" "$T/reactor.log"

pd_rc rc pd_cli deploy --one t.first t.nope --no-check --dry-run --format json \
	--release 2 --tenant acme --timeout 60s
pd_eq "deploy --dry-run --format json exits 0" 0 "$rc"
pd_eq "the JSON plan: t.first would run, t.nope is unknown" \
	'["t.first"] [["t.nope", "unknown action"]]' \
	"$(grep '^{' "$T/out" | python3 -c '
import json, sys
p = json.loads(sys.stdin.read())
print(json.dumps(p["would_run"]), json.dumps([[s["action"], s["why"]] for s in p["skipped"]]))')"

pd_eq "nothing ran: no marker of t.first" 0 "$(pd_lines "$T/markers/acme.first")"
pd_eq "nor of t.second" 0 "$(pd_lines "$T/markers/acme.second")"
pd_eq "t.done ran once only" 1 "$(pd_lines "$T/markers/acme.done")"
pd_eq "and nothing for globex" "" "$(ls "$T/markers" | grep globex)"
pd_report
pd_check "and the report is unchanged (no run, no REJECTED for t.nope)" \
	python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1])) != json.load(open(sys.argv[2])))' \
	"$T/report.before.json" "$T/report.json"

pd_rc rc pd_cli skip t.first --tenant acme --dry-run
pd_eq "--dry-run is a deploy option" 2 "$rc"
pd_rc rc pd_cli deploy --auto --release 2 --tenant acme --format json
pd_eq "--format without --dry-run is a usage error" 2 "$rc"

pd_rc rc pd_cli deploy --auto --release 3 --tenant acme --wait --timeout 60s
pd_eq "a real deploy afterwards exits 0" 0 "$rc"
pd_eq "and runs what the dry run said" "1 1 1" \
	"$(pd_lines "$T/markers/acme.first") $(pd_lines "$T/markers/acme.second") $(pd_lines "$T/markers/acme.done")"
pd_reactor_stop
pd_done
