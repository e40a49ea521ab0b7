#!/usr/bin/env bash
# Records the reactor cannot process go to the dead-letter topic with the
# reason and where they came from, and the reactor goes on with the next
# event; an event delivered twice (same ce_source + ce_id) runs once.
source "$(dirname "$0")/lib.sh"
pd_require_broker
PY=${PD_PYTHON:-$(bash "$PD_SOURCE_DIR/tests/interop/venv.sh")}
INTEROP=$PD_SOURCE_DIR/tests/interop/interop.py
pd_action_script
pd_config <<INI
[action t.ok]
run = $T/act.sh ok {tenant} 0
auto = true
INI
EVENTS=pdtest.$RUN_ID.events RESULTS=pdtest.$RUN_ID.results DLQ=pdtest.$RUN_ID.dlq
pd_reactor_start

send() { # send VALUE kcat-header-args...
	local v=$1; shift
	printf '%s' "$v" | kcat -P -b "$PD_BROKERS" -t "$EVENTS" -k acme "$@"
}
good='{"release":"1.0","selection":"AUTO"}'
send 'not avro at all' -H ce_specversion=1.0 -H ce_id=bad-1 -H ce_source=t \
	-H ce_type=release.deployed -H content-type=application/avro
send "$good" -H ce_specversion=1.0 -H ce_id=bad-2 -H ce_source=t \
	-H content-type=application/json
send "$good" -H ce_specversion=1.0 -H ce_id=bad-3 -H ce_source=t \
	-H ce_type=release.deployed -H 'ce_tenant=../../etc' -H content-type=application/json
send '{"release":"1.0"}' -H ce_specversion=1.0 -H ce_id=bad-4 -H ce_source=t \
	-H ce_type=release.deployed -H content-type=application/json
# The same event twice: runs once.
for i in 1 2; do
	send "$good" -H ce_specversion=1.0 -H ce_id=good-1 -H ce_source=t \
		-H ce_type=release.deployed -H ce_tenant=acme -H content-type=application/json
done

"$PY" "$INTEROP" results "$PD_BROKERS" "$RESULTS" good-1 1 90 >/dev/null
# A deploy after them proves the reactor did not stall.
rc=0; pd_cli deploy --one t.ok --tenant acme --release 1.2 --wait --timeout 60s >/dev/null 2>&1 || rc=$?
pd_eq "a later event still runs" 0 "$rc"
pd_eq "the event delivered twice ran once (plus one --one)" 2 "$(pd_lines "$T/markers/acme.ok")"

# Read the dead letters; they were produced before good-1 was processed.
for _ in $(seq 1 50); do
	kcat -C -b "$PD_BROKERS" -t "$DLQ" -o beginning -e -q \
		-f '%k|%h|%s\n' >"$T/dlq.txt" 2>/dev/null || true
	[ "$(grep -c postdeploy_error "$T/dlq.txt")" -ge 4 ] && break
	kcat -b "$PD_BROKERS" -L -t "$DLQ" >/dev/null 2>&1 # one metadata round trip
done
cat "$T/dlq.txt"
pd_eq "four dead letters" 4 "$(grep -c postdeploy_error "$T/dlq.txt")"
pd_check "undecodable value: reason given" grep -q "ce_id=bad-1.*postdeploy_error=[^,]*magic" "$T/dlq.txt"
pd_check "missing ce_type: reason names it" grep -q "ce_id=bad-2.*postdeploy_error=[^,]*ce_type" "$T/dlq.txt"
pd_check "invalid tenant: reason names it" grep -q "ce_id=bad-3.*postdeploy_error=[^,]*tenant" "$T/dlq.txt"
pd_check "missing field: reason names it" grep -q "ce_id=bad-4.*postdeploy_error=[^,]*selection" "$T/dlq.txt"
pd_check "dead letters keep key and value" grep -q "^acme|.*|not avro at all$" "$T/dlq.txt"
pd_check "dead letters say where from" grep -q "postdeploy_topic=$EVENTS,postdeploy_partition=[0-9]*,postdeploy_offset=[0-9]*" "$T/dlq.txt"
pd_eq "the invalid tenant ran nothing" 0 "$(ls "$T/markers" | grep -c etc || true)"
rc=0; pd_reactor_stop || rc=$?
pd_eq "the reactor stops cleanly" 0 "$rc"
pd_done
