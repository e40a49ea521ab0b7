#!/usr/bin/env bash
# Known problem 2: a failed or completed action was never picked up again by
# --auto/--all, and --one could not be called by name. Here a failed action
# stays pending and the next --auto runs it; a succeeded one does not run
# again; --one NAME re-runs it whatever its state.
source "$(dirname "$0")/lib.sh"
pd_require_broker
# flaky.sh fails on its first run for a tenant, succeeds afterwards.
cat >"$T/flaky.sh" <<'SH'
#!/bin/sh
echo run >>"$MARKERS/$1.flaky"
[ "$(wc -l <"$MARKERS/$1.flaky")" -gt 1 ] || { echo "first run fails" >&2; exit 1; }
SH
chmod +x "$T/flaky.sh"
pd_config <<INI
[action t.flaky]
run = $T/flaky.sh {tenant}
auto = true
INI
pd_reactor_start
pd_rc rc pd_cli deploy --auto --release 1 --tenant acme --wait --timeout 60s
pd_eq "first --auto fails" 1 "$rc"
pd_rc rc pd_cli deploy --auto --release 2 --tenant acme --wait --timeout 60s
pd_eq "the failed action runs again on the next --auto, and succeeds" 0 "$rc"
pd_rc rc pd_cli deploy --all --release 3 --tenant acme --wait --timeout 60s
pd_eq "--all after success exits 0" 0 "$rc"
pd_check "--all after success plans nothing" grep -q "0 action(s) to run" "$T/out"
pd_eq "a succeeded action does not run again" 2 "$(pd_lines "$T/markers/acme.flaky")"
pd_rc rc pd_cli deploy --one t.flaky --release 4 --tenant acme --wait --timeout 60s
pd_eq "--one re-runs it by name" 0 "$rc"
pd_eq "it ran a third time" 3 "$(pd_lines "$T/markers/acme.flaky")"
pd_report
pd_eq "report: attempt of the latest run" 1 "$(pd_state acme t.flaky attempt)"
pd_eq "report: latest release" 4 "$(pd_state acme t.flaky release)"
pd_reactor_stop
pd_done
