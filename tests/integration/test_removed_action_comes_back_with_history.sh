#!/usr/bin/env bash
# Known problem 3: an action that disappeared once stayed unavailable
# forever, even after it was registered again. Here a removed action shows
# as unavailable, and once it is back it is available with its history.
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
INI
cp "$T/postdeploy.ini" "$T/full.ini"
pd_reactor_start
# Tenants "a" and "a-b" too: "a-b/…" sorts before "a/…" by key, not by
# tenant, which once lost the rows of "a".
pd_rc rc pd_cli deploy --auto --release 1 --tenant acme --tenant a --tenant a-b \
	--wait --timeout 60s
pd_eq "both actions run" 0 "$rc"
pd_reactor_stop

# t.b removed from the config.
python3 - "$T/postdeploy.ini" <<'PY'
import sys, re
p = sys.argv[1]
s = open(p).read()
open(p, "w").write(re.sub(r"\[action t\.b\][^\[]*", "", s))
PY
printf '[cli]\ntenants = acme, a, a-b\n' >>"$T/postdeploy.ini"
pd_reactor_start
pd_rc rc pd_cli deploy --auto --release 2 --tenant acme --wait --timeout 60s
pd_report
pd_eq "removed: t.b is unavailable" unavailable "$(pd_state acme t.b state)"
pd_eq "removed: t.a still succeeded" succeeded "$(pd_state acme t.a state)"
pd_eq "removed: tenant a's t.b is unavailable too" unavailable "$(pd_state a t.b state)"
pd_eq "removed: tenant a-b's t.b is unavailable too" unavailable "$(pd_state a-b t.b state)"
pd_cli report --tenant acme >"$T/report.txt"
pd_check "table lists it as no longer registered" grep -q "Unavailable (no longer registered) (1)" "$T/report.txt"
pd_reactor_stop

# t.b registered again.
cp "$T/full.ini" "$T/postdeploy.ini"
pd_reactor_start
pd_rc rc pd_cli deploy --auto --release 3 --tenant acme --wait --timeout 60s
pd_eq "back: deploy runs nothing new and succeeds" 0 "$rc"
pd_report
pd_eq "back: t.b is available with its history (succeeded)" succeeded "$(pd_state acme t.b state)"
pd_eq "back: its history keeps the release it ran for" 1 "$(pd_state acme t.b release)"
pd_eq "back: it did not run again (it had succeeded)" 1 "$(pd_lines "$T/markers/acme.b")"
pd_cli actions --format json >"$T/actions.json"
pd_check "postdeploy actions lists t.b again" grep -q '"action": "t.b"' "$T/actions.json"
pd_reactor_stop
pd_done
