#!/usr/bin/env bash
# A crash while an in-process (plugin) action runs: nothing of that run
# was stored before it ran (its row is written whole with its outcome, its
# action.started has no outbox row), so no INTERRUPTED is ever
# recorded for it; the event comes back after the restart and the action
# runs again, once more, and succeeds. The deploy's --wait, started before
# the crash, ends with success. (Before, the started row was committed
# first and recovery recorded the cut-short run INTERRUPTED.)
source "$(dirname "$0")/lib.sh"
pd_require_broker
PLUGIN=$PD_BUILD_DIR/libpostdeploy_example_plugin.so
[ -f "$PLUGIN" ] || pd_die "the example plugin is not built: $PLUGIN"
pd_config </dev/null
# The plugin's auto action alone; static membership, so the restarted
# reactor takes its partitions back at once.
sed -i "s|^\[reactor\]|[reactor]\nplugins = $PLUGIN|" "$T/postdeploy.ini"
sed -i "s|^\[kafka\]|[kafka]\ngroup.instance.id = pdtest-$RUN_ID|" "$T/postdeploy.ini"

# The reactor kills itself after the action returned, before its outcome
# is in the store.
PD_CRASH_AT=run.after_exit pd_reactor_start
pd_cli deploy --auto --release 7.0 --tenant acme --wait --timeout 120s >"$T/wait.out" 2>&1 &
CLI=$!
rc=0
timeout 60 tail --pid="$PD_REACTOR_PID" -f /dev/null || kill -TERM "$PD_REACTOR_PID"
wait "$PD_REACTOR_PID" || rc=$?
pd_eq "the reactor crashed at run.after_exit (SIGKILL)" 137 "$rc"
pd_eq "nothing of the cut-short run is in the store" 0 \
	"$(sqlite3 "$T/state/state.db" "SELECT count(*) FROM runs")"

pd_reactor_start
rc=0; wait "$CLI" || rc=$?
pd_eq "the deploy's --wait, started before the crash, exits 0" 0 "$rc"
pd_reactor_stop

# The plugin logs "all N batches done" as it returns: once per run, in
# the run's log file (the re-run takes the same run id, as the cut-short
# one never reached the store, so both runs' lines are in one file).
pd_eq "the action ran twice: cut short by the crash, then again" 2 \
	"$(cat "$T"/logs/acme/example.count_orders/*.log | grep -c 'batches done')"
# Its result records: an action.started per run that reached the broker,
# one action.finished (the re-run's), never an INTERRUPTED.
kcat -C -b "$PD_BROKERS" -t "pdtest.$RUN_ID.results" -o beginning -e -q \
	-f '%k %h\n' 2>/dev/null | grep '^acme/example.count_orders ' >"$T/records" || true
pd_eq "one action.finished: the re-run's" 1 \
	"$(grep -c 'ce_type=action.finished' "$T/records")"
pd_report
pd_eq "report: succeeded" succeeded "$(pd_state acme example.count_orders state)"
pd_check "no INTERRUPTED recorded anywhere" bash -c \
	"! grep -qi interrupted '$T/report.json' '$T/wait.out' '$T/reactor.log'"
pd_eq "the store holds one run of it, succeeded" "1|0" \
	"$(sqlite3 "$T/state/state.db" "SELECT count(*), max(status) FROM runs WHERE action = 'example.count_orders'")"
pd_done
