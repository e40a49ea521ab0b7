#!/usr/bin/env bash
# Stopping never hangs. With shutdown_grace = 2s: SIGTERM while a worker
# waits out a 60 s retry backoff, and SIGTERM while another process holds
# the state store locked, both end within the grace plus a second; SIGHUP
# during a backoff reloads at once instead of after it. What a stop or a
# reload cuts short is recorded as it happened, `deploy --wait` never waits
# for a retry that will not come, and nothing is lost: the next start (or
# the new config) runs the action again.
source "$(dirname "$0")/lib.sh"
pd_require_broker
command -v sqlite3 >/dev/null || pd_die "sqlite3 is not installed (run scripts/setup.sh)"
pd_action_script
# Fails on its first run for a tenant, succeeds on every later one.
cat >"$T/flaky.sh" <<'SH'
#!/bin/sh
echo "release $POSTDEPLOY_RELEASE attempt $POSTDEPLOY_ATTEMPT" >>"$MARKERS/$1.flaky"
[ "$(wc -l <"$MARKERS/$1.flaky")" -gt 1 ]
SH
chmod +x "$T/flaky.sh"
pd_config <<INI
[action t.flaky]
run = $T/flaky.sh {tenant}
auto = true
retries = 2
retry_backoff = 60s
INI
sed -i "s|^shutdown_grace = .*|shutdown_grace = 2s|" "$T/postdeploy.ini"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
# pd_await_log PATTERN N: until the reactor log holds N lines matching
# PATTERN (at most 60 s). Follows the log instead of polling it.
pd_await_log() {
	timeout 60 grep -m"$2" -q -- "$1" <(tail --pid=$$ -n +1 -f "$T/reactor.log")
}
pd_log_count() { grep -c -- "$1" "$T/reactor.log" || true; }
# pd_stop_timed SIGNAL: sends it, waits for the reactor to exit (killing it
# after 30 s so a hang fails the test instead of stalling it); sets
# stop_ms (signal to exit, measured) and stop_rc.
pd_stop_timed() {
	local t0
	t0=$(now_ms)
	kill -"$1" "$PD_REACTOR_PID"
	timeout 30 tail --pid="$PD_REACTOR_PID" -s 0.02 -f /dev/null ||
		kill -KILL "$PD_REACTOR_PID"
	stop_ms=$(($(now_ms) - t0))
	stop_rc=0
	wait "$PD_REACTOR_PID" || stop_rc=$?
	PD_REACTOR_PID=
}

# 1. SIGTERM while a worker waits out a 60 s backoff.
pd_reactor_start
pd_cli deploy --auto --release 1 --tenant acme --wait --timeout 120s >"$T/deploy1.out" 2>&1 &
cli=$!
pd_await_log "acme t.flaky: retry 1 of 2 in 60000 ms" 1 || pd_die "t.flaky never got to its backoff"
pd_stop_timed TERM
pd_eq "SIGTERM during the backoff: exit 0" 0 "$stop_rc"
pd_check "it stopped within shutdown_grace + 1 s ($stop_ms ms)" [ "$stop_ms" -lt 3000 ]
pd_eq "the retry was not started" 1 "$(pd_lines "$T/markers/acme.flaky")"
t0=$(now_ms)
rc=0; wait "$cli" || rc=$?
pd_eq "the waiting deploy ends, exit 1 (interrupted)" 1 "$rc"
pd_check "right after the stop, not at its timeout ($(($(now_ms) - t0)) ms)" [ $(($(now_ms) - t0)) -lt 10000 ]
pd_check "it says which retry was not started and why" \
	grep -q "t.flaky .*INTERRUPTED in 0 ms: retry 1 of 2 not started: the reactor is stopping; the action runs again at its next start" "$T/deploy1.out"
pd_report
pd_eq "report: interrupted" interrupted "$(pd_state acme t.flaky state)"
pd_reactor_start
pd_rc rc pd_cli deploy --auto --release 2 --tenant acme --wait --timeout 60s
pd_eq "after the restart a deploy succeeds" 0 "$rc"
pd_eq "the cut-short action ran again at the next start, for the same deploy" \
	"release 1 attempt 1,release 1 attempt 1" "$(paste -sd, "$T/markers/acme.flaky")"
pd_report
pd_eq "report: succeeded" succeeded "$(pd_state acme t.flaky state)"

# 2. SIGHUP while a worker waits out a 60 s backoff: the reload does not
# wait for it; the action runs again at once under the new config.
pd_cli deploy --auto --release 3 --tenant globex --wait --timeout 120s >"$T/deploy3.out" 2>&1 &
cli=$!
pd_await_log "globex t.flaky: retry 1 of 2 in 60000 ms" 1 || pd_die "globex's t.flaky never got to its backoff"
sed -i "s|^retry_backoff = .*|retry_backoff = 1s|" "$T/postdeploy.ini"
cat >>"$T/postdeploy.ini" <<INI
[action t.ok]
run = $T/act.sh ok {tenant} 0
auto = true
INI
n=$(pd_log_count "config reloaded")
t0=$(now_ms)
kill -HUP "$PD_REACTOR_PID"
pd_await_log "config reloaded" $((n + 1)) || pd_die "the config was never reloaded"
reload_ms=$(($(now_ms) - t0))
pd_check "SIGHUP during the backoff reloads without waiting it out ($reload_ms ms)" [ "$reload_ms" -lt 3000 ]
rc=0; wait "$cli" || rc=$?
pd_eq "the waiting deploy succeeds" 0 "$rc"
pd_check "it was told the retry was cut short and more would come" \
	grep -q "t.flaky .*INTERRUPTED in 0 ms: retry 1 of 2 not started: the config is reloaded; the action runs again under the new one (will retry)" "$T/deploy3.out"
# The next event of the tenant runs after that one is done.
pd_rc rc pd_cli deploy --auto --release 3.1 --tenant globex --wait --timeout 60s
pd_eq "t.flaky ran again under the new config, once" 2 "$(pd_lines "$T/markers/globex.flaky")"
pd_eq "the new config's action ran for that event too" 1 "$(pd_lines "$T/markers/globex.ok")"

# 3. SIGTERM while another process holds the state store locked.
mkfifo "$T/sql.in" "$T/sql.out"
sqlite3 "$T/state/state.db" <"$T/sql.in" >"$T/sql.out" 2>&1 &
sqlpid=$!
exec 5>"$T/sql.in" 6<"$T/sql.out"
printf 'BEGIN EXCLUSIVE;\n.print locked\n' >&5
read -r -t 30 line <&6 || true
pd_eq "the database is locked by another process" locked "$line"
n=$(pd_log_count "state store: .*locked.*retrying")
pd_cli deploy --auto --release 4 --tenant initech --wait --timeout 120s >"$T/deploy4.out" 2>&1 &
cli=$!
pd_await_log "state store: .*locked.*retrying" $((n + 1)) || pd_die "the reactor never met the lock"
pd_stop_timed TERM
pd_eq "SIGTERM with the store locked: exit 0" 0 "$stop_rc"
pd_check "it stopped within shutdown_grace + 1 s ($stop_ms ms)" [ "$stop_ms" -lt 3000 ]
pd_check "it says it gave up waiting for the store" grep -q "giving up: the reactor is stopping" "$T/reactor.log"
pd_eq "nothing ran while the store was locked" 0 "$(pd_lines "$T/markers/initech.ok")"
printf 'COMMIT;\n.quit\n' >&5
exec 5>&- 6<&-
wait "$sqlpid" || true
pd_reactor_start
rc=0; wait "$cli" || rc=$?
pd_eq "after the lock goes and a restart, the waiting deploy completes" 0 "$rc"
pd_eq "initech's t.ok ran once" 1 "$(pd_lines "$T/markers/initech.ok")"
pd_reactor_stop

# 4. Both: SIGTERM during a 60 s backoff while the store is locked, so the
# interruption cannot be recorded. The failure before it said "will retry";
# the next start must keep that promise, or `deploy --wait` waits forever.
sed -i "s|^retry_backoff = .*|retry_backoff = 60s|" "$T/postdeploy.ini"
pd_reactor_start
pd_cli deploy --auto --release 5 --tenant umbrella --wait --timeout 90s >"$T/deploy5.out" 2>&1 &
cli=$!
# Published, so its batch is committed before the lock is taken.
timeout 60 grep -m1 -q "t.flaky .*(will retry)" <(tail --pid=$$ -n +1 -f "$T/deploy5.out") ||
	pd_die "the first failure of umbrella's t.flaky never arrived"
mkfifo "$T/sql2.in" "$T/sql2.out"
sqlite3 "$T/state/state.db" <"$T/sql2.in" >"$T/sql2.out" 2>&1 &
sqlpid=$!
exec 5>"$T/sql2.in" 6<"$T/sql2.out"
printf '.timeout 10000\nBEGIN EXCLUSIVE;\n.print locked\n' >&5
read -r -t 30 line <&6 || true
pd_eq "the database is locked by another process" locked "$line"
pd_stop_timed TERM
pd_eq "SIGTERM in a backoff with the store locked: exit 0" 0 "$stop_rc"
pd_check "it stopped within shutdown_grace + 1 s ($stop_ms ms)" [ "$stop_ms" -lt 3000 ]
printf 'COMMIT;\n.quit\n' >&5
exec 5>&- 6<&-
wait "$sqlpid" || true
pd_reactor_start
t0=$(now_ms)
rc=0; wait "$cli" || rc=$?
pd_eq "after a restart the waiting deploy succeeds instead of waiting out its timeout" 0 "$rc"
pd_check "soon after the restart ($(($(now_ms) - t0)) ms)" [ $(($(now_ms) - t0)) -lt 30000 ]
pd_eq "the promised retry ran at the next start, for the same deploy" \
	"release 5 attempt 1,release 5 attempt 1" "$(paste -sd, "$T/markers/umbrella.flaky")"
pd_reactor_stop
pd_done
