#!/usr/bin/env bash
# A state fault: another process holds the SQLite database locked. The
# reactor stops taking new work, logs why, retries with backoff and resumes
# when the lock goes; nothing is acknowledged that was not recorded, and
# nothing runs twice.
source "$(dirname "$0")/lib.sh"
pd_require_broker
command -v sqlite3 >/dev/null || pd_die "sqlite3 is not installed (run scripts/setup.sh)"
pd_action_script
pd_config <<INI
[action t.ok]
run = $T/act.sh ok {tenant} 0
auto = true
INI
pd_reactor_start
pd_rc rc pd_cli deploy --auto --release 1 --tenant acme --wait --timeout 60s
pd_eq "before the fault: a deploy runs" 0 "$rc"

# Another program takes the write lock and keeps it until told.
mkfifo "$T/sql.in" "$T/sql.out"
sqlite3 "$T/state/state.db" <"$T/sql.in" >"$T/sql.out" 2>&1 &
sqlpid=$!
exec 5>"$T/sql.in" 6<"$T/sql.out"
printf 'BEGIN EXCLUSIVE;\n.print locked\n' >&5
read -r -t 30 line <&6 || true
pd_eq "the database is locked by another process" locked "$line"

pd_cli deploy --auto --release 2 --tenant globex --wait --timeout 120s >"$T/deploy.out" 2>&1 &
cli=$!
# Awaited on the reactor's own log line, not on time.
timeout 60 grep -m1 -q "state store: .*locked.*retrying" <(tail -n +1 -f "$T/reactor.log")
pd_eq "the reactor says the store is locked and that it retries" 0 "$?"
pd_eq "nothing ran while the store was locked" 0 "$(pd_lines "$T/markers/globex.ok")"

printf 'COMMIT;\n.quit\n' >&5
exec 5>&- 6<&-
wait "$sqlpid" || true
rc=0; wait "$cli" || rc=$?
pd_eq "after the lock goes, the deploy completes" 0 "$rc"
pd_eq "globex's action ran once" 1 "$(pd_lines "$T/markers/globex.ok")"
kill -0 "$PD_REACTOR_PID"
pd_eq "the reactor kept running" 0 "$?"
rc=0; pd_reactor_stop || rc=$?
pd_eq "and stops cleanly" 0 "$rc"
pd_reactor_start
pd_rc rc pd_cli deploy --auto --release 3 --tenant globex --wait --timeout 60s
pd_eq "after a restart nothing runs again" 1 "$(pd_lines "$T/markers/globex.ok")"
pd_reactor_stop
pd_done
