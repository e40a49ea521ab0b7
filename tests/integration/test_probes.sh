#!/usr/bin/env bash
# The reactor's health probes flip with the faults they stand for: /readyz
# answers 503 "state store not writable" while another process holds the
# SQLite database locked and 200 again once the lock goes, and 503 "broker
# unreachable" for a reactor whose broker address nobody listens on, while
# /livez stays 200 in both (the poll loop turns). The shared broker is
# never stopped: the second reactor is given an address where none runs.
source "$(dirname "$0")/lib.sh"
pd_require_broker
for tool in curl sqlite3 python3; do
	command -v "$tool" >/dev/null || pd_die "$tool is not installed (run scripts/setup.sh)"
done

pd_free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# pd_await_http URL CODE: polls until URL answers CODE (the body goes to
# $T/body), for at most 60 s; prints the last code.
pd_await_http() {
	local end=$((SECONDS + 60)) code
	while :; do
		code=$(curl -s -o "$T/body" -w '%{http_code}' "$1" || true)
		[ "$code" = "$2" ] || [ $SECONDS -ge $end ] && break
		sleep 0.2
	done
	echo "$code"
}

PORT=$(pd_free_port)
URL=http://127.0.0.1:$PORT
pd_action_script
pd_config <<INI
[action t.ok]
run = $T/act.sh ok {tenant} 0
auto = true
INI
sed -i "s|^\[reactor\]|[reactor]\nhttp = 127.0.0.1:$PORT|" "$T/postdeploy.ini"
pd_reactor_start
pd_eq "ready once joined and restored" 200 "$(pd_await_http "$URL/readyz" 200)"
pd_eq "... and says ok" ok "$(cat "$T/body")"
pd_eq "alive" 200 "$(pd_await_http "$URL/livez" 200)"

# Another program takes the write lock and keeps it until told.
mkfifo "$T/sql.in" "$T/sql.out"
sqlite3 "$T/state/state.db" <"$T/sql.in" >"$T/sql.out" 2>&1 &
sqlpid=$!
exec 5>"$T/sql.in" 6<"$T/sql.out"
printf 'BEGIN EXCLUSIVE;\n.print locked\n' >&5
read -r -t 30 line <&6 || true
pd_eq "the database is locked by another process" locked "$line"
t0=$(date +%s%N)
pd_cli deploy --auto --release 2 --tenant globex --wait --timeout 120s >"$T/deploy.out" 2>&1 &
cli=$!
pd_eq "not ready while the store is locked" 503 "$(pd_await_http "$URL/readyz" 503)"
echo "#    /readyz said 503 $(( ($(date +%s%N) - t0) / 1000000 )) ms after the deploy was sent"
pd_eq "... and says why" "state store not writable" "$(cat "$T/body")"
pd_eq "alive meanwhile" 200 "$(pd_await_http "$URL/livez" 200)"

printf 'COMMIT;\n.quit\n' >&5
exec 5>&- 6<&-
wait "$sqlpid" || true
t0=$(date +%s%N)
pd_eq "ready again once the lock goes" 200 "$(pd_await_http "$URL/readyz" 200)"
echo "#    /readyz said 200 again $(( ($(date +%s%N) - t0) / 1000000 )) ms after the lock went"
rc=0; wait "$cli" || rc=$?
pd_eq "the deploy held up by the lock completes" 0 "$rc"
rc=0; pd_reactor_stop || rc=$?
pd_eq "the reactor stops cleanly" 0 "$rc"

# A reactor whose broker nobody answers for: alive, never ready.
NOBROKER=127.0.0.1:$(pd_free_port)
PORT2=$(pd_free_port)
sed -e "s|^bootstrap.servers = .*|bootstrap.servers = $NOBROKER|" \
	-e "s|^http = .*|http = 127.0.0.1:$PORT2|" \
	-e "s|^state = .*|state = $T/state2/state.db|" "$T/postdeploy.ini" >"$T/nobroker.ini"
: >"$T/nobroker.log" # there before tail looks, whoever runs first
MARKERS=$T/markers PD_SUPERVISOR_EXE=$PD_BIN/postdeploy-reactor \
	"$PD_BIN/postdeploy-reactor" -c "$T/nobroker.ini" >"$T/nobroker.log" 2>&1 &
PD_REACTOR_PID=$!
# Awaited on the reactor's own log line: it has tried the broker and failed.
timeout 60 grep -m1 -q "waiting for Kafka" <(tail -n +1 -f "$T/nobroker.log")
pd_eq "the reactor without a broker says it waits for Kafka" 0 "$?"
pd_eq "alive without a broker" 200 "$(pd_await_http "http://127.0.0.1:$PORT2/livez" 200)"
pd_eq "not ready without a broker" 503 "$(pd_await_http "http://127.0.0.1:$PORT2/readyz" 503)"
pd_eq "... and says why" "broker unreachable" "$(cat "$T/body")"
echo "#    scraping /metrics took $(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$PORT2/metrics") s"
rc=0; pd_reactor_stop || rc=$?
pd_eq "the reactor without a broker stops cleanly" 0 "$rc"
pd_done
