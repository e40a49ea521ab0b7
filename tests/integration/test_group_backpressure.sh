#!/usr/bin/env bash
# A long action in a shared group: the partition's events pile up behind
# it, so the reactor stops fetching that partition at 1000 waiting events
# (rd_kafka_pause_partitions) and fetches again once half are done; it
# keeps polling meanwhile, stays in the group, and every event runs once.
source "$(dirname "$0")/lib.sh"
pd_require_broker
N=1100
cat >"$T/act.sh" <<'SH'
#!/bin/sh
if [ "$1" = t0001 ]; then read _ <"$MARKERS/gate"; fi
echo "$1" >>"$MARKERS/ran"
SH
chmod +x "$T/act.sh"
pd_config <<INI
[action a]
run = $T/act.sh {tenant}
auto = true
INI
sed -i -e "s|^\[reactor\]|[reactor]\nshared_group = true\nlease = 2s|" \
	-e "s|^workers = .*|workers = 1|" -e "s|^partitions = .*|partitions = 1|" \
	"$T/postdeploy.ini"
mkfifo "$T/markers/gate"
pd_reactor_start
await_line() { # await_line PATTERN: up to 120 s
	for _ in $(seq 1200); do grep -q "$1" "$T/reactor.log" && return 0; sleep 0.1; done
	return 1
}
pd_check "the reactor is given the partition" await_line 'rebalance: assigned'
seq -f 't%04.0f' 1 "$N" >"$T/tenants"
pd_cli deploy --auto --release 1.0 --tenants-file "$T/tenants" >/dev/null
pd_check "with t0001's action held, fetching pauses at 1000 waiting events" \
	await_line 'partition 0: 1000 event(s) wait: fetching paused'
pd_eq "nothing else ran meanwhile" 0 "$(pd_lines "$T/markers/ran")"
echo go >"$T/markers/gate"
pd_check "fetching resumes" await_line 'partition 0: [0-9]* event(s) wait: fetching resumed'
n=$(grep -o 'partition 0: [0-9]* event(s) wait: fetching resumed' "$T/reactor.log" | head -n 1 | cut -d' ' -f3)
pd_check "at half: no more than 500 waited then ($n)" test "${n:-9999}" -le 500
for _ in $(seq 1200); do [ "$(pd_lines "$T/markers/ran")" -ge "$N" ] && break; sleep 0.1; done
pd_eq "every event ran, once" "$N $N" \
	"$(pd_lines "$T/markers/ran") $(sort -u "$T/markers/ran" | wc -l | tr -d ' ')"
pd_check "the reactor stayed in the group (no rebalance after the first)" \
	test "$(grep -c 'rebalance:' "$T/reactor.log")" = 1
pd_reactor_stop
pd_done
