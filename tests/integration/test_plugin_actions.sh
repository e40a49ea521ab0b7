#!/usr/bin/env bash
# C actions from a plugin: loaded at start-up, listed in the registry, run
# in-process with the tenant's context, their log lines captured like a
# command's output; a SIGHUP after the plugin's file changed says that the
# loaded code stays; a name clash with the config stops start-up.
source "$(dirname "$0")/lib.sh"
pd_require_broker
BUILT=$PD_BUILD_DIR/libpostdeploy_example_plugin.so
[ -f "$BUILT" ] || pd_die "the example plugin is not built: $BUILT"
PLUGIN=$T/plugin.so # a copy this test can replace
cp "$BUILT" "$PLUGIN"
pd_action_script
pd_config <<INI
[action t.cmd]
run = $T/act.sh cmd {tenant} 0
auto = true
INI
sed -i "s|^\[reactor\]|[reactor]\nplugins = $PLUGIN|" "$T/postdeploy.ini"
pd_reactor_start

pd_rc rc pd_cli deploy --auto --release 5.0 --tenant acme --wait --timeout 60s
pd_eq "the plugin's auto action runs with --auto" 0 "$rc"
pd_check "it is reported succeeded" grep -q "example.count_orders *SUCCEEDED" "$T/out"
pd_check "the manual one did not run" bash -c "! grep -q example.close_books '$T/out'"
pd_report
pd_eq "report: succeeded" succeeded "$(pd_state acme example.count_orders state)"
pd_check "its log lines are the output tail" grep -q "counting orders of acme for release 5.0" "$T/report.json"
pd_check "the full log is in log_dir" bash -c "grep -q 'all .* batches done' '$T'/logs/acme/example.count_orders/*.log"

pd_rc rc pd_cli deploy --one example.close_books --release 5.0 --tenant acme --wait --timeout 60s
pd_eq "a failing C action fails the deploy" 1 "$rc"
pd_report
pd_eq "report: failed" failed "$(pd_state acme example.close_books state)"
pd_eq "report: no exit code for an in-process action" None "$(pd_state acme example.close_books exit_code)"
pd_check "report: its error message" grep -q "ledger of tenant 'acme' is locked by another job" "$T/report.json"

pd_cli actions --format json >"$T/actions.json"
pd_check "the registry lists the plugin's actions" grep -q '"action": "example.close_books"' "$T/actions.json"

# dlopen hands a reload the library it has open: new code needs a restart,
# and a reload after the file changed says so.
WARNING="plugin $PLUGIN: the file changed since it was loaded, but a reload keeps the code already loaded; restart the reactor to run the new code"
kill -HUP "$PD_REACTOR_PID"
timeout 60 grep -m1 "config reloaded" <(tail -n +1 -f "$T/reactor.log") >/dev/null
pd_eq "a reload with the file unchanged is done" 0 "$?"
pd_check "and says nothing about the plugin" bash -c "! grep -qF 'the file changed' '$T/reactor.log'"
cp "$BUILT" "$PLUGIN.new" && mv "$PLUGIN.new" "$PLUGIN" # as a rebuild replaces it
kill -HUP "$PD_REACTOR_PID"
# (Not >/dev/null: GNU grep then stops at the first match.)
timeout 60 grep -m2 "config reloaded" <(tail -n +1 -f "$T/reactor.log") >"$T/reloads"
pd_eq "a reload after the file was replaced is done" 0 "$?"
pd_check "and warns that the loaded code stays" grep -qF "$WARNING" "$T/reactor.log"
pd_rc rc pd_cli deploy --auto --release 5.1 --tenant globex --wait --timeout 60s
pd_eq "the plugin's action still runs after the reloads" 0 "$rc"
pd_reactor_stop

# A config action with a plugin action's name stops start-up.
printf '[action example.count_orders]\nrun = /bin/true\n' >>"$T/postdeploy.ini"
pd_rc rc "$PD_BIN/postdeploy-reactor" -c "$T/postdeploy.ini" --check
pd_eq "a name clash with the config is refused" 2 "$rc"
pd_check "naming the plugin" grep -q "plugin $PLUGIN: action 'example.count_orders' is also defined at" "$T/out"
pd_done
