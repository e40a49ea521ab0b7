#!/usr/bin/env bash
# A state fault: the disk is full. A file-size limit set on the running
# reactor (prlimit --fsize; SIGXFSZ ignored, so a write fails with EFBIG as
# it fails with ENOSPC on a full disk) makes every write to its SQLite
# database fail. The reactor stops taking new work, logs why, retries with
# backoff and resumes when space is back; nothing is acknowledged that was
# not recorded, and nothing runs twice.
source "$(dirname "$0")/lib.sh"
pd_require_broker
command -v prlimit >/dev/null || pd_die "prlimit is not installed (util-linux)"
pd_action_script
pd_config <<INI
[action t.ok]
run = $T/act.sh ok {tenant} 0
auto = true
INI

# Not pd_reactor_start: the reactor's log must go through a pipe, or the
# limit would stop its own log lines too. SIGXFSZ ignored is inherited
# through exec.
start_reactor() {
	MARKERS=$T/markers PD_SUPERVISOR_EXE=$PD_BIN/postdeploy-reactor \
		bash -c 'trap "" XFSZ; exec "$@"' reactor \
		"$PD_BIN/postdeploy-reactor" -c "$T/postdeploy.ini" \
		> >(cat >>"$T/reactor.log") 2>&1 &
	PD_REACTOR_PID=$!
}
start_reactor
pd_rc rc pd_cli deploy --auto --release 1 --tenant acme --wait --timeout 60s
pd_eq "before the fault: a deploy runs" 0 "$rc"

# The disk fills up: no write past 4 KiB in any file (the WAL's first frame
# ends past it).
prlimit --pid "$PD_REACTOR_PID" --fsize=4096:
pd_eq "the limit is on the reactor" 4096 "$(prlimit --pid "$PD_REACTOR_PID" --fsize -o SOFT --noheadings | tr -d ' ')"

pd_cli deploy --auto --release 2 --tenant globex --wait --timeout 120s >"$T/deploy.out" 2>&1 &
cli=$!
# Awaited on the reactor's own log line, not on time.
# Either a single change is retried, or a whole batch was lost and the
# reactor is made again from what is durable; either way it says so, and
# while the disk stays full it tries again (two failures are awaited).
timeout 60 grep -m2 -E "state store: .*retrying|starting the reactor again" <(tail -n +1 -f "$T/reactor.log") >"$T/faults.txt"
pd_eq "the reactor says the store cannot write, and retries" 0 "$?"
pd_eq "two attempts failed while the disk was full" 2 "$(pd_lines "$T/faults.txt")"
# A command's start is not committed before it runs (its name at the
# supervisor finds it again): the one command handed to the supervisor
# before the first commit failed may have run; nothing after it, and it is
# not run again once the store writes (below: once in all).
pd_check "no more than the command started before the first failed commit ran" \
	test "$(pd_lines "$T/markers/globex.ok")" -le 1
pd_check "the reactor runs on" kill -0 "$PD_REACTOR_PID"

# Space is back.
prlimit --pid "$PD_REACTOR_PID" --fsize=unlimited:
rc=0; wait "$cli" || rc=$?
pd_eq "after space is back, the deploy completes" 0 "$rc"
pd_eq "globex's action ran once" 1 "$(pd_lines "$T/markers/globex.ok")"
rc=0; pd_reactor_stop || rc=$?
pd_eq "the reactor stops cleanly" 0 "$rc"
pd_check "the database is intact" bash -c \
	"[ \"\$(sqlite3 '$T/state/state.db' 'PRAGMA integrity_check')\" = ok ]"

start_reactor
pd_rc rc pd_cli deploy --auto --release 3 --tenant globex --wait --timeout 60s
pd_eq "after a restart, nothing runs again" 1 "$(pd_lines "$T/markers/globex.ok")"
pd_eq "nor for acme" 1 "$(pd_lines "$T/markers/acme.ok")"
pd_reactor_stop
pd_done
