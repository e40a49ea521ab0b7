#!/usr/bin/env bash
# `postdeploy-reactor --dev` owns the dev folder in the user's cache (its
# broker address, its state, its supervisor's folder) while it runs. A
# second dev reactor used to delete the first one's state and overwrite its
# address, and stopping either removed the address the other still used;
# every start left a supervisor-* folder behind; the supervisor showed in
# ps as "exe". Needs no Kafka: the dev broker is inside the reactor.
source "$(dirname "$0")/lib.sh"
R=$PD_BIN/postdeploy-reactor
export XDG_CACHE_HOME=$T/cache
DEV=$T/cache/postdeploy
printf '[action t.ok]\nrun = /bin/true\nauto = true\n' >"$T/dev.ini"
DEV_PID=

dev_start() { # dev_start LOG: starts a dev reactor, waits until it is ready
	: >"$1" # there before tail looks, whoever runs first
	"$R" -c "$T/dev.ini" --dev >"$1" 2>&1 &
	DEV_PID=$!
	PD_REACTOR_PID=$DEV_PID # killed at exit if a check fails early
	timeout 30 grep -m1 -q "dev broker on" <(tail -n +1 -f "$1") ||
		pd_die "the dev reactor did not start: $(cat "$1")"
}
dev_stop() {
	kill -TERM "$DEV_PID"
	wait "$DEV_PID" || true
	PD_REACTOR_PID=
}
sup_folders() { find "$DEV" -maxdepth 1 -name 'supervisor-*' | wc -l | tr -d ' '; }
# Gone: no such process, or a zombie its new parent has not reaped yet.
gone() { local st; st=$(ps -o stat= -p "$1" || true); [ -z "$st" ] || [ "${st:0:1}" = Z ]; }
sup_pid() { sed -n 's/.*pid \([0-9]*\) serves.*/\1/p' "$DEV"/supervisor-*/supervisor.log | tail -n 1; }

dev_start "$T/a.log"
A=$DEV_PID
brokers=$(cat "$DEV/dev-brokers")
inode=$(stat -c %i "$DEV/dev-state.db")

# The supervisor says what it is in ps, though started as /proc/self/exe.
sp=$(sup_pid)
pd_check "the supervisor's pid is in its log" test -n "$sp"
pd_eq "ps names the supervisor pd-supervisor (comm)" pd-supervisor "$(ps -o comm= -p "$sp")"
pd_check "and postdeploy-supervisor (args)" \
	bash -c "ps -o args= -p '$sp' | grep -q '^postdeploy-supervisor --supervisor $DEV/supervisor-'"

# A second dev reactor is refused, and touches nothing of the first's.
pd_rc rc timeout 30 "$R" -c "$T/dev.ini" --dev
pd_eq "a second dev reactor is refused (exit 1)" 1 "$rc"
pd_check "naming the pid of the one running" grep -q "another dev reactor (pid $A) is running" "$T/out"
pd_check "and saying what to do" grep -q "stop it first (kill $A), or run this one without --dev" "$T/out"
pd_eq "the first one's broker address stays" "$brokers" "$(cat "$DEV/dev-brokers")"
pd_eq "the first one's state stays (same file)" "$inode" "$(stat -c %i "$DEV/dev-state.db")"
pd_check "the first one still runs" kill -0 "$A"

# Stopping it removes its address, stops its supervisor, removes its folder.
dev_stop
pd_check "its stop removes the broker address it wrote" test ! -e "$DEV/dev-brokers"
pd_eq "its stop leaves no supervisor-* folder" 0 "$(sup_folders)"
pd_check "and its supervisor is gone" gone "$sp"

# An address file someone else wrote meanwhile is not ours to remove.
dev_start "$T/b.log"
echo "127.0.0.1:1" >"$DEV/dev-brokers"
dev_stop
pd_eq "an address written by someone else stays" "127.0.0.1:1" "$(cat "$DEV/dev-brokers")"

# A dev reactor killed with -9 leaves its supervisor and folder; the next
# start takes the folder over (the kernel dropped the lock) and removes them.
dev_start "$T/c.log"
killed_sup=$(sup_pid)
kill -KILL "$DEV_PID"; wait "$DEV_PID" 2>/dev/null || true
pd_eq "a dev reactor killed with -9 leaves its folder" 1 "$(sup_folders)"
dev_start "$T/d.log"
pd_eq "two dev starts leave one supervisor-* folder (the running one's)" 1 "$(sup_folders)"
pd_check "the dead one's supervisor was stopped" gone "$killed_sup"
dev_stop
pd_eq "and none once it stops" 0 "$(sup_folders)"
pd_done
