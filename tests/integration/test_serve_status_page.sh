#!/usr/bin/env bash
# `postdeploy serve`: the status page follows the results topic live. During
# a deploy (one slow action held open, one failing with <script> in its
# output, one succeeding) and after it, the page rendered by headless
# Chromium shows each action in the report's section, the exit code, the
# error and the output tail as text (no injected script element), and
# /api/report.json has exactly the rows of `report --format json`; a serve
# started later answers 503 until it has read the history, never half of
# it. The tenant of a URL is escaped; a port in use is a configuration
# error.
# PD_SCREENSHOTS=DIR keeps the two screenshots there (docs/ has them).
source "$(dirname "$0")/lib.sh"
pd_require_broker
command -v chromium >/dev/null || pd_die "chromium is not installed (run scripts/setup.sh)"
command -v curl >/dev/null || pd_die "curl is not installed (run scripts/setup.sh)"
pd_action_script
# The slow action runs until the test opens its gate.
cat >"$T/slow.sh" <<SH
#!/bin/sh
echo "warming caches for \$1"
while [ ! -e "$T/gate" ]; do sleep 0.1; done
echo "warm"
SH
cat >"$T/bad.sh" <<'SH'
#!/bin/sh
echo "migrating accounts"
echo "<script>alert(1)</script>"
exit 3
SH
chmod +x "$T/slow.sh" "$T/bad.sh"
pd_config <<INI
[action app.fix_accounts]
run = $T/bad.sh
auto = true
[action app.reindex]
run = $T/act.sh reindex {tenant} 0
auto = true
[action app.backfill]
run = $T/act.sh backfill {tenant} 0
auto = false
[action app.warm_cache]
run = $T/slow.sh {tenant}
auto = true
description = warms the caches (slow)
INI
SHOTS=${PD_SCREENSHOTS:-$T}

pd_reactor_start
# serve reads the topics the reactor makes: it starts once the reactor has
# published its registry.
deadline=$((SECONDS + 60))
until pd_cli actions --format names 2>/dev/null | grep -q app.warm_cache; do
	[ $SECONDS -lt $deadline ] || pd_die "the reactor published no registry"
	sleep 0.2
done
# 50,000 records that are no result (both readers skip them) make the
# history long enough that a serve started later is seen reading it.
seq 50000 | kcat -P -b "$PD_BROKERS" -t "pdtest.$RUN_ID.results" -k junk/x
# Port 0: the system picks a free one, and serve prints its URL once the
# server answers.
exec 3< <(exec "$PD_BIN/postdeploy" serve --listen 127.0.0.1:0 -c "$T/postdeploy.ini" 2>"$T/serve.err")
SERVE_PID=$!
SERVE2_PID=
trap 'kill -TERM $SERVE_PID $SERVE2_PID 2>/dev/null || true; pd_cleanup' EXIT
read -r -t 30 -u 3 line || pd_die "serve printed no URL: $(cat "$T/serve.err")"
URL=$(sed -n 's|^postdeploy serve: \(http://[^ ]*\) .*|\1|p' <<<"$line")
[ -n "$URL" ] || pd_die "serve said: $line"
echo "serving on $URL"

# await_json JSON_PATH PYTHON_CONDITION: polls serve's JSON until the
# condition holds, on s(TENANT, ACTION), the state of a row (None if there
# is none yet); 60 s at most.
await_json() {
	local deadline=$((SECONDS + 60))
	while [ $SECONDS -lt $deadline ]; do
		if curl -sf "${URL%/}$1" >"$T/await.json" && python3 -c '
import json, sys
m = {(r["tenant"], r["action"]): r["state"] for r in json.load(open(sys.argv[1]))}
s = lambda t, a: m.get((t, a))
sys.exit(0 if eval(sys.argv[2]) else 1)' "$T/await.json" "$2"; then
			return 0
		fi
		sleep 0.2
	done
	return 1
}
chrome() { # chrome ARGS... URL: headless Chromium, its own profile
	chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
		--user-data-dir="$T/chrome" --virtual-time-budget=3000 "$@" 2>>"$T/chrome.log"
}
# dom_rows FILE: "section action state" for each action row of a dumped
# tenant page.
dom_rows() {
	python3 - "$1" <<'PY'
import sys
from html.parser import HTMLParser
class P(HTMLParser):
    section = None
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.section = a.get("id")
        if tag == "tr" and "data-action" in a:
            print(self.section, a["data-action"], a["data-state"])
P().feed(open(sys.argv[1]).read())
PY
}
# script_elements FILE: how many <script> elements the DOM has, and how
# many of those hold alert(.
script_elements() {
	python3 - "$1" <<'PY'
import sys
from html.parser import HTMLParser
class P(HTMLParser):
    n = bad = 0
    inside = False
    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self.n += 1; self.inside = True
    def handle_endtag(self, tag):
        if tag == "script":
            self.inside = False
    def handle_data(self, data):
        if self.inside and "alert(" in data:
            self.bad += 1
p = P(); p.feed(open(sys.argv[1]).read()); print(p.n, p.bad)
PY
}

pd_cli deploy --auto --release 2.4.0 --tenant acme --wait --timeout 120s >"$T/deploy.out" 2>&1 &
DEPLOY_PID=$!
pd_check "the page's JSON sees the slow action running and the failure, live" \
	await_json /api/tenant/acme.json \
	's("acme", "app.warm_cache") == "running" and s("acme", "app.fix_accounts") == "failed" and s("acme", "app.reindex") == "succeeded"'
chrome --dump-dom "${URL}tenant/acme" >"$T/running.html"
pd_eq "during the deploy: each action in its section" \
	"completed app.reindex succeeded|failed app.fix_accounts failed|pending-manual app.backfill pending|running app.warm_cache running" \
	"$(dom_rows "$T/running.html" | sort | paste -sd'|')"
pd_check "the running action shows its elapsed time" \
	grep -qE 'class="elapsed">running for ([0-9]+m )?[0-9]+s<' "$T/running.html"
chrome --screenshot="$SHOTS/status-page-running.png" --window-size=1100,900 "${URL}tenant/acme" >/dev/null
pd_check "a screenshot during the deploy" test -s "$SHOTS/status-page-running.png"

touch "$T/gate"
rc=0; wait "$DEPLOY_PID" || rc=$?
pd_eq "deploy --wait exits 1 (one action failed)" 1 "$rc"
pd_check "the page's JSON sees the slow action finish" \
	await_json /api/tenant/acme.json 's("acme", "app.warm_cache") == "succeeded"'

# (a) The JSON is the report's: every row, every field.
pd_report
curl -sf "${URL}api/report.json" >"$T/served.json"
pd_check "/api/report.json has the rows of report --format json" python3 -c '
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
key = lambda r: (r["tenant"], r["action"])
sys.exit(0 if sorted(a, key=key) == sorted(b, key=key) and len(a) == 8 else 1)' \
	"$T/report.json" "$T/served.json"

# A serve started now reads that history first: until it has, the JSON
# answers 503 rather than half of it (asked at once, before it is read).
exec 4< <(exec "$PD_BIN/postdeploy" serve --listen 127.0.0.1:0 -c "$T/postdeploy.ini" 2>"$T/serve2.err")
SERVE2_PID=$!
read -r -t 30 -u 4 line || pd_die "the second serve printed no URL: $(cat "$T/serve2.err")"
URL2=$(sed -n 's|^postdeploy serve: \(http://[^ ]*\) .*|\1|p' <<<"$line")
code=$(curl -s -o "$T/first.json" -w '%{http_code}' "${URL2}api/report.json")
same_as_report() {
	python3 -c '
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
key = lambda r: (r["tenant"], r["action"])
sys.exit(0 if sorted(a, key=key) == sorted(b, key=key) else 1)' "$T/report.json" "$1"
}
if [ "$code" = 503 ]; then
	pd_check "a fresh serve's first answer: 503, still reading" grep -q "still reading" "$T/first.json"
else
	pd_check "a fresh serve's first answer ($code): the whole report, not part" same_as_report "$T/first.json"
fi
await_ready() {
	local deadline=$((SECONDS + 30))
	until curl -sf "${URL2}api/report.json" >"$T/second.json"; do
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.1
	done
}
ready_is_report() { await_ready && same_as_report "$T/second.json"; }
pd_check "then the whole report" ready_is_report
kill -TERM "$SERVE2_PID"
wait "$SERVE2_PID" || true

# (b) The rendered page says what the report says.
chrome --dump-dom "${URL}tenant/acme" >"$T/done.html"
pd_eq "after the deploy: the page's (action, state) are the report's" \
	"$(python3 -c '
import json, sys
print("|".join(sorted(r["action"] + " " + r["state"] for r in json.load(open(sys.argv[1])) if r["tenant"] == "acme")))' "$T/report.json")" \
	"$(dom_rows "$T/done.html" | cut -d' ' -f2- | sort | paste -sd'|')"
pd_eq "and each in the report's section" \
	"completed app.reindex succeeded|completed app.warm_cache succeeded|failed app.fix_accounts failed|pending-manual app.backfill pending" \
	"$(dom_rows "$T/done.html" | sort | paste -sd'|')"
pd_check "the failed action's exit code" grep -q '<td class="exit">exit 3</td>' "$T/done.html"
pd_check "its error" grep -q '<div class="error">error: exited with status 3</div>' "$T/done.html"
pd_check "its output tail, <script> shown as text" \
	grep -q '&lt;script&gt;alert(1)&lt;/script&gt;' "$T/done.html"
pd_eq "no script element but the page's own" "1 0" "$(script_elements "$T/done.html")"
chrome --screenshot="$SHOTS/status-page-done.png" --window-size=1100,900 "${URL}tenant/acme" >/dev/null
pd_check "a screenshot after the deploy" test -s "$SHOTS/status-page-done.png"

chrome --dump-dom "$URL" >"$T/index.html"
pd_check "the index counts acme's failure, highlighted" \
	grep -q '<td class="bad" data-count="failed">1</td>' "$T/index.html"
pd_check "and lists globex, where nothing ran yet" grep -q 'data-tenant="globex"' "$T/index.html"

# The tenant of a URL is written into the page by the server: escaped.
curl -sf "${URL}tenant/%3Cimg%20src=x%20onerror=%22alert(2)%22%3E" >"$T/evil.html" || true
pd_check "a tenant in the URL is escaped" \
	grep -qF '<h1 id="tenant">&lt;img src=x onerror=&quot;alert(2)&quot;&gt;</h1>' "$T/evil.html"
pd_check "and never written raw" bash -c "! grep -q '<img' '$T/evil.html'"
code=$(curl -s -o /dev/null -w '%{http_code}' "${URL}api/tenant/nobody.json")
pd_eq "a tenant without rows: 404" 404 "$code"

# A port in use is said, as a configuration error.
ADDR=${URL#http://}
pd_rc rc "$PD_BIN/postdeploy" serve --listen "${ADDR%/}" -c "$T/postdeploy.ini"
pd_eq "serve on a port in use exits 2" 2 "${rc}"
pd_check "and says why" grep -q "cannot listen on .*: Address already in use" "$T/out"

kill -TERM "$SERVE_PID"
rc=0; wait "$SERVE_PID" || rc=$?
pd_eq "SIGTERM stops serve with status 0" 0 "$rc"
pd_reactor_stop
pd_done
