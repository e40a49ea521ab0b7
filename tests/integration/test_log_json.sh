#!/usr/bin/env bash
# With `log_format = json` every line the reactor writes on stderr, its
# librdkafka's and its supervisor's included, is one JSON object with time,
# level, program and message; an attempt's line carries tenant, action,
# attempt, status, duration_ms, event_id and run_id; a dead letter says why;
# a message full of quotes, newlines, control characters and bytes that are
# not UTF-8 is escaped, not cut and not left raw.
source "$(dirname "$0")/lib.sh"
pd_require_broker
command -v python3 >/dev/null || pd_die "python3 is not installed (run scripts/setup.sh)"
MESSY=$PD_BUILD_DIR/tests/plugins/messy.so
[ -f "$MESSY" ] || pd_die "the messy test plugin is not built: $MESSY"
pd_action_script
pd_config <<INI
[action t.ok]
run = $T/act.sh ok {tenant} 0
auto = true
INI
# debug: librdkafka's own lines (cgrp) come through the same sink.
sed -i "s|^\[reactor\]|[reactor]\nlog_format = json\nlog_level = debug\nplugins = $MESSY|" "$T/postdeploy.ini"
sed -i "s|^\[kafka\]|[kafka]\ndebug = cgrp|" "$T/postdeploy.ini"
EVENTS=pdtest.$RUN_ID.events
pd_reactor_start

pd_rc rc pd_cli deploy --auto --release 1.0 --tenant acme --wait --timeout 60s
pd_eq "the deploy succeeds" 0 "$rc"
# A dead letter (an invalid tenant with a quote and a backslash), then a
# deploy for the same key: it is on the same partition, so once the deploy
# is done the dead letter was logged.
printf '%s' '{"release":"1.0","selection":"AUTO"}' |
	kcat -P -b "$PD_BROKERS" -t "$EVENTS" -k acme -H ce_specversion=1.0 \
		-H ce_id=bad-1 -H ce_source=t -H ce_type=release.deployed \
		-H 'ce_tenant=a"b\c' -H content-type=application/json
pd_rc rc pd_cli deploy --one messy.fail --release 1.0 --tenant acme --wait --timeout 60s
pd_eq "the messy action fails (exit 1)" 1 "$rc"
rc=0; pd_reactor_stop || rc=$?
pd_eq "the reactor stops cleanly" 0 "$rc"
SUPLOG=$(find "$T/state" -name supervisor.log | head -n 1)
pd_check "the supervisor has a log" test -s "$SUPLOG"

# Prints "ok   - ..." / "FAIL - ..." lines; exits 1 if any failed.
check_log() {
	python3 - "$T/reactor.log" "$SUPLOG" <<'PY'
import json, re, sys

fails = 0
def check(what, cond):
    global fails
    print(("ok   - " if cond else "FAIL - ") + what)
    fails += not cond

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
def parse(path, program):
    raw = open(path, "rb").read()
    lines, bad = [], []
    for ln in raw.split(b"\n")[:-1]:
        try:
            o = json.loads(ln.decode("utf-8"))
            ok = (isinstance(o, dict) and TIME.match(o["time"])
                  and o["level"] in ("error", "warn", "info", "debug")
                  and o["program"] == program and isinstance(o["message"], str))
        except (ValueError, KeyError, TypeError):
            ok = False
        (lines if ok else bad).append(o if ok else ln)
    check("%s: every line is a JSON object with time, level, program, "
          "message (%d lines, bad: %r)" % (path.split("/")[-1], len(lines),
                                          bad[:3]), lines and not bad)
    check("%s ends with a newline" % path.split("/")[-1], raw.endswith(b"\n"))
    return lines

log = parse(sys.argv[1], "postdeploy-reactor")
parse(sys.argv[2], "postdeploy-supervisor")

def one(pred):
    found = [o for o in log if pred(o)]
    return found[0] if found else {}

ok = one(lambda o: o.get("action") == "t.ok" and "status" in o)
check("the attempt line has tenant, action, attempt, status, duration_ms, "
      "event_id, run_id: %r" % ok,
      ok.get("tenant") == "acme" and ok.get("attempt") == 1
      and ok.get("status") == "SUCCEEDED"
      and isinstance(ok.get("duration_ms"), int) and ok["duration_ms"] >= 0
      and isinstance(ok.get("run_id"), int) and ok.get("event_id")
      and ok.get("level") == "info")
plan = one(lambda o: o.get("event_id") == ok.get("event_id")
           and "action" not in o)
check("the planned event's line has its tenant and event id",
      plan.get("tenant") == "acme" and "action(s)" in plan.get("message", ""))

want = ('say "hi" \\ back\nnext line\r\ttab \x01\x1b[31m red \u00e9 '
        '\ufffd end')
messy = one(lambda o: o.get("action") == "messy.fail")
check("quotes, backslash, newlines, controls and a non-UTF-8 byte are "
      "escaped and read back as written: %r" % messy.get("reason"),
      messy.get("reason") == want and want in messy.get("message", "")
      and messy.get("status") == "FAILED" and messy.get("level") == "warn")

dead = one(lambda o: o.get("status") == "dead_letter")
check("the dead letter's line gives the reason: %r" % dead.get("reason"),
      dead.get("reason") == "invalid tenant 'a\"b\\c' in ce_tenant"
      and dead.get("level") == "warn")
check("librdkafka's lines are JSON too",
      any(o["message"].startswith("kafka ") for o in log))
sys.exit(1 if fails else 0)
PY
}
pd_check "the JSON log says it all (checks above)" check_log
pd_done
