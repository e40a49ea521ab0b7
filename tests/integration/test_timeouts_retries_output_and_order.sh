#!/usr/bin/env bash
# Known problem 6: no timeouts, no retries, no output capture, no ordering
# or dependencies, no per-tenant report. Here all of them.
source "$(dirname "$0")/lib.sh"
pd_require_broker
# order.sh NAME TENANT STATUS: appends NAME to the tenant's order file.
cat >"$T/order.sh" <<'SH'
#!/bin/sh
echo "$1" >>"$MARKERS/$2.order"
echo "output line of $1"
exit "$3"
SH
# retry.sh: fails until its third attempt.
cat >"$T/retry.sh" <<'SH'
#!/bin/sh
echo "attempt $POSTDEPLOY_ATTEMPT" >>"$MARKERS/$1.retry"
[ "$POSTDEPLOY_ATTEMPT" -ge 3 ]
SH
chmod +x "$T/order.sh" "$T/retry.sh"
pd_config <<INI
[action t.third]
run = $T/order.sh third {tenant} 0
auto = true
after = t.first, t.second
[action t.first]
run = $T/order.sh first {tenant} 0
auto = true
[action t.second]
run = $T/order.sh second {tenant} 0
auto = true
[action t.gate]
run = $T/order.sh gate {tenant} 1
auto = false
[action t.behind_gate]
run = $T/order.sh behind {tenant} 0
auto = false
after = t.gate
[action t.retry]
run = $T/retry.sh {tenant}
auto = false
retries = 3
retry_backoff = 50ms
[action t.slow]
run = /bin/sleep 30
auto = false
timeout = 200ms
[action t.env]
run = /bin/sh -c 'echo "\$GREETING from \$(pwd) for \$POSTDEPLOY_TENANT"'
auto = false
workdir = $T/wd
env.GREETING = hello
[action t.loud]
run = /usr/bin/seq 1 200000
auto = false
INI
mkdir -p "$T/wd"
pd_reactor_start

pd_rc rc pd_cli deploy --auto --release 1 --tenant acme --wait --timeout 60s
pd_eq "ordered deploy succeeds" 0 "$rc"
pd_eq "config order, with after = moving t.third after its dependencies" \
	"first second third" "$(tr '\n' ' ' <"$T/markers/acme.order" | sed 's/ $//')"

pd_rc rc pd_cli deploy --one t.gate t.behind_gate --release 1 --tenant acme --wait --timeout 60s
pd_eq "a failed dependency fails the deploy" 1 "$rc"
pd_check "its dependent is skipped with the reason" \
	grep -q "t.behind_gate.*SKIPPED.*dependency t.gate FAILED" "$T/out"
pd_check "the dependent never ran" bash -c "! grep -q behind '$T/markers/acme.order'"

pd_rc rc pd_cli deploy --one t.retry --release 1 --tenant acme --wait --timeout 60s
pd_eq "retries: succeeds on the third attempt" 0 "$rc"
pd_check "the retried attempts are reported" grep -q "will retry" "$T/out"
pd_eq "it ran three times" 3 "$(pd_lines "$T/markers/acme.retry")"
pd_report
pd_eq "the result carries attempt 3" 3 "$(pd_state acme t.retry attempt)"

pd_rc rc pd_cli deploy --one t.slow --release 1 --tenant acme --wait --timeout 60s
pd_eq "timeout: the deploy fails" 1 "$rc"
pd_report
pd_eq "timeout: recorded timed_out" timed_out "$(pd_state acme t.slow state)"
pd_check "timeout: the error says so" grep -q "timed out after 200ms" "$T/report.json"

pd_rc rc pd_cli deploy --one t.loud --release 1 --tenant globex --wait --timeout 60s
pd_eq "a loud action succeeds" 0 "$rc"
pd_report
pd_check "its output tail ends with the last line" \
	bash -c "python3 -c 'import json,sys; r=[x for x in json.load(open(sys.argv[1])) if x[\"action\"]==\"t.loud\" and x[\"tenant\"]==\"globex\"][0]; sys.exit(not r[\"output_tail\"].endswith(\"200000\n\") or len(r[\"output_tail\"]) > 4096)' '$T/report.json'"
log=$(ls "$T/logs/globex/t.loud/"*.log)
pd_eq "the full output is in the log file" 200000 "$(wc -l <"$log" | tr -d ' ')"
pd_eq "the log file is not world-readable" 600 "$(stat -c %a "$log")"

pd_rc rc pd_cli deploy --one t.env --release 1 --tenant acme --wait --timeout 60s
pd_eq "an action with env and workdir succeeds" 0 "$rc"
pd_report
pd_check "it ran in its workdir with its env and the tenant's context" \
	grep -q "hello from $T/wd for acme" "$T/report.json"

pd_cli report --tenant globex --format json >"$T/globex.json"
pd_eq "the report works per tenant" globex \
	"$(python3 -c 'import json,sys; print(",".join(sorted({r["tenant"] for r in json.load(open(sys.argv[1]))})))' "$T/globex.json")"
pd_reactor_stop
pd_done
