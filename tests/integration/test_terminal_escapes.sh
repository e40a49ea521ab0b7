#!/usr/bin/env bash
# Nothing from an event or an action's output can drive the operator's
# terminal: an action that prints a screen clear, a window title and a fake
# success line, and results whose release, error and description carry
# escapes, are shown by report, deploy --wait, skip --wait and actions with
# every control character visible (\x1b), while JSON keeps the exact bytes.
source "$(dirname "$0")/lib.sh"
pd_require_broker
cat >"$T/evil.sh" <<'SH'
#!/bin/sh
printf '\033[2J\033]0;title\007FAKE: all actions succeeded\n'
exit 3
SH
chmod +x "$T/evil.sh"
pd_config <<INI
[action t.evil]
run = $T/evil.sh
auto = true
INI
EVIL='\x1b[2J\x1b]0;title\x07FAKE: all actions succeeded'

# no_control FILE: no ESC, BEL nor C1 CSI/OSC byte pair in FILE.
no_control() { ! LC_ALL=C grep -qP '\x1b|\x07|\xc2[\x80-\x9f]' "$1"; }
# has FILE TEXT: FILE holds TEXT, as is.
has() { grep -qF -- "$2" "$1"; }

pd_reactor_start
pd_rc rc pd_cli deploy --auto --release 1 --tenant acme --wait --timeout 60s
pd_eq "the failing action makes deploy --wait exit 1" 1 "$rc"
pd_check "deploy --wait prints no control character" no_control "$T/out"

pd_rc rc pd_cli report --tenant acme
pd_eq "report exits 0" 0 "$rc"
cp "$T/out" "$T/report.txt"
pd_check "the report prints no control character" no_control "$T/report.txt"
pd_check "the report shows the output's escapes, visibly" \
	has "$T/report.txt" "| $EVIL"
pd_report
pd_eq "JSON keeps the output's exact bytes" \
	"$(printf '\033[2J\033]0;title\007FAKE: all actions succeeded\n')" \
	"$(pd_state acme t.evil output_tail)"
pd_check "written as JSON escapes" has "$T/report.json" '\u001B[2J\u001B]0;title\u0007FAKE'

# A skip's reason quotes --requested-by, which nothing checks.
pd_rc rc pd_cli skip t.evil --tenant acme --requested-by "$(printf 'ops\033[2J')" \
	--wait --timeout 60s
pd_eq "skip --wait exits 0" 0 "$rc"
pd_check "skip --wait prints no control character" no_control "$T/out"
pd_check "and shows the reason's escape" has "$T/out" 'on request of ops\x1b[2J'
pd_rc rc pd_cli report --tenant acme
pd_check "the skip's reason in the report: no control character" no_control "$T/out"
pd_check "shown visibly" has "$T/out" 'reason: skipped on request of ops\x1b[2J'
pd_reactor_stop

# Results another producer wrote (read as they come: only the events topic
# is checked): a plan whose release breaks lines and paints red, and an
# error with the fake, while deploy --wait waits for them.
RESULTS=pdtest.$RUN_ID.results
put() { # put KEY VALUE HEADER=VALUE...: one JSON record on partition 0
	local key=$1 val=$2 h args=()
	shift 2
	for h in "$@"; do args+=(-H "$h"); done
	printf '%s|%s' "$key" "$val" |
		kcat -b "$PD_BROKERS" -P -t "$RESULTS" -p 0 -K '|' -Z "${args[@]}"
}
hdrs() { # hdrs TYPE: valid CloudEvents headers
	echo ce_specversion=1.0 ce_id="id-$RANDOM$RANDOM" ce_source=test/1 \
		ce_type="$1" ce_tenant=acme content-type=application/json
}
pd_cli deploy --auto --release 2 --tenant acme --wait --timeout 60s \
	>"$T/wait.out" 2>&1 &
WAIT_PID=$!
for _ in $(seq 300); do
	grep -q '^published' "$T/wait.out" && break
	sleep 0.1
done
ID=$(awk '/^published/ {print $3}' "$T/wait.out")
pd_check "the deploy was published" test -n "$ID"
NOW=$(($(date +%s) * 1000))
put acme "{\"tenant\":\"acme\",\"release\":\"2\\n\\u001b[31m\",\"trigger_id\":\"$ID\",\"actions\":[\"t.evil\"],\"reactor\":\"r\\u009b2J\",\"planned_at\":$NOW}" \
	$(hdrs deploy.planned)
put acme/t.evil "{\"action\":\"t.evil\",\"tenant\":\"acme\",\"release\":\"2\",\"trigger_id\":\"$ID\",\"attempt\":1,\"started_at\":$NOW,\"reactor\":\"r\",\"status\":\"FAILED\",\"exit_code\":3,\"duration_ms\":5,\"error\":\"\\u001b[2J\\u001b]0;title\\u0007FAKE: all actions succeeded\",\"output_tail\":\"\",\"finished_at\":$NOW,\"retrying\":false}" \
	$(hdrs action.finished)
rc=0
wait "$WAIT_PID" || rc=$?
pd_eq "deploy --wait takes the injected failure: exit 1" 1 "$rc"
pd_check "deploy --wait prints no control character" no_control "$T/wait.out"
pd_check "the plan's release, visibly" has "$T/wait.out" 'for release 2\x0a\x1b[31m'
pd_check "the error, visibly" has "$T/wait.out" "FAILED (exit 3) in 5 ms: $EVIL"

# A registry whose description and reactor name carry escapes.
put registry "{\"reactor\":\"r\\u001b]0;x\\u0007\",\"published_at\":$((NOW + 86400000)),\"actions\":[{\"id\":\"t.evil\",\"auto\":true,\"policy\":\"once\",\"description\":\"\\u001b[2Jwipe \\u009b1m\",\"after\":[]}]}" \
	$(hdrs registry.published)
pd_rc rc pd_cli actions
pd_eq "actions exits 0" 0 "$rc"
pd_check "actions prints no control character" no_control "$T/out"
pd_check "the description, visibly" has "$T/out" '\x1b[2Jwipe \xc2\x9b1m'
pd_check "the reactor's name, visibly" has "$T/out" 'published by r\x1b]0;x\x07'
pd_rc rc pd_cli actions --format json
pd_check "actions --format json keeps the exact text" \
	has "$T/out" '"description": "\u001B[2Jwipe \u009B1m"'
pd_rc rc pd_cli report --tenant acme
pd_check "the report's descriptions: no control character" no_control "$T/out"
pd_done
