#!/usr/bin/env bash
# `deploy --wait` over a thousand actions per tenant counts every result
# once: results arrive from three partitions in any order (some before their
# tenant's plan), and the summary, the lines printed and the exit status
# still say exactly how many ran and how many failed.
source "$(dirname "$0")/lib.sh"
pd_require_broker
PLUGIN=$PD_BUILD_DIR/bench/bench_noop_plugin.so
[ -f "$PLUGIN" ] || pd_die "the benchmarks' no-op plugin is not built: $PLUGIN"
N=1000
pd_config <<INI
[action t.fail]
run = /bin/false
auto = true
INI
sed -i "s|^\[reactor\]|[reactor]\nplugins = $PLUGIN\nstate_sync = true|" "$T/postdeploy.ini"
PD_BENCH_NOOP_ACTIONS=$N pd_reactor_start

pd_rc rc pd_cli deploy --auto --release 1.0 --tenant acme --wait --timeout 120s
pd_eq "one failed action of $((N + 1)) fails the wait" 1 "$rc"
pd_eq "the summary counts each action once" \
	"$((N + 1)) action(s) finished, 1 failed" "$(tail -n 1 "$T/out")"
pd_eq "one SUCCEEDED line per no-op action" "$N" \
	"$(grep -c '^acme: bench\.noop[0-9]* *SUCCEEDED' "$T/out")"
pd_eq "no action's outcome printed twice" "" \
	"$(grep -o '^acme: [^ ]* *\(SUCCEEDED\|FAILED\)' "$T/out" | sort | uniq -d)"

# Two tenants at once: each plan is counted with its own results.
pd_rc rc pd_cli deploy --auto --release 1.1 --tenant globex --tenant initech \
	--wait --timeout 120s
pd_eq "two tenants: one failure each fails the wait" 1 "$rc"
pd_eq "two tenants: the summary counts both plans" \
	"$((2 * N + 2)) action(s) finished, 2 failed" "$(tail -n 1 "$T/out")"

# Nothing pending: the once-policy actions are done, t.fail runs again.
pd_rc rc pd_cli deploy --auto --release 1.0 --tenant acme --wait --timeout 120s
pd_eq "again: only the failed action is planned" \
	"1 action(s) finished, 1 failed" "$(tail -n 1 "$T/out")"
pd_reactor_stop
pd_done
