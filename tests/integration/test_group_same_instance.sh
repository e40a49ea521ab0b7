#!/usr/bin/env bash
# Two reactors started as one instance ([reactor] instance, a
# misconfiguration): the newer one's join fences the older static member
# (and its init_transactions the older producer). The older reactor must
# not go on as if it still owned the partitions: it stops with an error
# naming the instance, and the newer one runs the deploys.
source "$(dirname "$0")/lib.sh"
pd_require_broker
pd_action_script
pd_config <<INI
[action t.a]
run = $T/act.sh a {tenant} 0
auto = true
INI
sed -i "s|^\[reactor\]|[reactor]\nshared_group = true\nlease = 2s\ninstance = twin|" \
	"$T/postdeploy.ini"

start() { # start NAME: own HOME and state; sets PID_NAME
	local d=$T/$1
	mkdir -p "$d/home"
	sed -e "s|^state = .*|state = $d/state/state.db|" "$T/postdeploy.ini" >"$d/pd.ini"
	HOME=$d/home MARKERS=$T/markers PD_SUPERVISOR_EXE=$PD_BIN/postdeploy-reactor \
		"$PD_BIN/postdeploy-reactor" -c "$d/pd.ini" >>"$d/reactor.log" 2>&1 &
	printf -v "PID_$1" '%s' $!
}
await_line() { # await_line FILE PATTERN: up to 60 s
	for _ in $(seq 600); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}
trap 'kill -TERM ${PID_r1:-} ${PID_r2:-} 2>/dev/null || true; wait; pd_cleanup' EXIT

start r1
pd_check "r1 is given partitions" await_line "$T/r1/reactor.log" 'rebalance: assigned'
start r2
rc=0
timeout 30 tail --pid="$PID_r1" -f /dev/null || kill -TERM "$PID_r1"
wait "$PID_r1" || rc=$?
PID_r1=
pd_eq "the fenced reactor stops with an error" 1 "$rc"
pd_check "it names the instance" grep -q "another reactor running as instance twin" "$T/r1/reactor.log"
pd_rc rc pd_cli deploy --auto --release 1.0 --tenant acme --tenant globex --wait --timeout 60s
pd_eq "the other one runs the deploys" 0 "$rc"
pd_eq "each ran once" "1 1" "$(pd_lines "$T/markers/acme.a") $(pd_lines "$T/markers/globex.a")"
kill -TERM "$PID_r2"; wait "$PID_r2" || true
PID_r2=
pd_done || { tail -n 20 "$T/r1/reactor.log" "$T/r2/reactor.log"; exit 1; }
