#!/usr/bin/env bash
# Hostile input and misbehaving actions. Every kind of record the reactor
# cannot process goes to the dead-letter topic with its reason and the
# reactor goes on; actions that crash, hang, flood their output or do not
# exist are recorded with a clear error, and the reactor's memory stays
# bounded.
source "$(dirname "$0")/lib.sh"
pd_require_broker
PY=${PD_PYTHON:-$(bash "$PD_SOURCE_DIR/tests/interop/venv.sh")}
pd_action_script
pd_config <<INI
[action t.ok]
run = $T/act.sh ok {tenant} 0
auto = true
[action t.segv]
run = /bin/sh -c 'kill -SEGV \$\$'
auto = false
[action t.hang]
run = /bin/sleep 600
auto = false
timeout = 500ms
[action t.flood]
run = /usr/bin/head -c 100000000 /dev/zero
auto = false
[action t.missing]
run = $T/no/such/program
auto = false
INI
sed -i "s|^\[reactor\]|[reactor]\nmax_event_bytes = 65536|" "$T/postdeploy.ini"
EVENTS=pdtest.$RUN_ID.events DLQ=pdtest.$RUN_ID.dlq
pd_reactor_start

send() { # send VALUE kcat-header-args...
	local v=$1; shift
	printf '%s' "$v" | kcat -P -b "$PD_BROKERS" -t "$EVENTS" -k acme "$@"
}
ok='{"release":"1.0","selection":"AUTO"}'
H=(-H ce_specversion=1.0 -H ce_source=t -H ce_tenant=acme)
send "$ok" "${H[@]}" -H ce_id=unknown-type -H ce_type=release.exploded -H content-type=application/json
send "$ok" "${H[@]}" -H ce_id=result-type -H ce_type=action.started -H content-type=application/json
send "$ok" -H ce_specversion=2.0 -H ce_source=t -H ce_id=bad-spec -H ce_type=release.deployed -H content-type=application/json
send "$ok" "${H[@]}" -H ce_type=release.deployed -H content-type=application/json   # no ce_id
send "$ok" "${H[@]}" -H ce_id=xml -H ce_type=release.deployed -H content-type=application/xml
# An Avro value of another schema (action.started's fingerprint) sent as a
# release.deployed.
"$PY" - "$PD_SOURCE_DIR/schemas" >"$T/wrong.bin" <<'PY'
import io, json, struct, sys, fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form
s = fastavro.parse_schema(json.load(open(sys.argv[1] + "/action_started.avsc")))
fp = bytes.fromhex(fingerprint(to_parsing_canonical_form(s), "CRC-64-AVRO"))
b = io.BytesIO()
fastavro.schemaless_writer(b, s, {"action": "a", "tenant": "acme", "release": "1", "trigger_id": "x",
                                  "attempt": 1, "started_at": 0, "reactor": "r"})
sys.stdout.buffer.write(b"\xc3\x01" + fp + b.getvalue())
PY
kcat -P -b "$PD_BROKERS" -t "$EVENTS" -k acme "${H[@]}" -H ce_id=wrong-fp -H ce_type=release.deployed \
	-H content-type=application/avro "$T/wrong.bin"
head -c 70000 /dev/zero | tr '\0' x >"$T/big"
kcat -P -b "$PD_BROKERS" -t "$EVENTS" -k acme "${H[@]}" -H ce_id=too-big -H ce_type=release.deployed \
	-H content-type=application/json "$T/big"

# A deploy behind them in acme's partition proves the reactor went on.
pd_rc rc pd_cli deploy --auto --release 1 --tenant acme --wait --timeout 60s
pd_eq "a good deploy after the poison runs" 0 "$rc"
for _ in $(seq 1 100); do
	kcat -C -b "$PD_BROKERS" -t "$DLQ" -o beginning -e -q -f '%h\n' >"$T/dlq.txt" 2>/dev/null || true
	[ "$(grep -c postdeploy_error "$T/dlq.txt")" -ge 7 ] && break
	kcat -b "$PD_BROKERS" -L -t "$DLQ" >/dev/null 2>&1
done
reason() { grep "ce_id=$1[,]" "$T/dlq.txt" | sed 's/.*postdeploy_error=\([^,]*\).*/\1/'; }
pd_eq "seven dead letters" 7 "$(grep -c postdeploy_error "$T/dlq.txt")"
pd_eq "unknown ce_type" "unknown ce_type 'release.exploded'" "$(reason unknown-type)"
pd_check "a result type on the events topic" bash -c "grep 'ce_id=result-type,' '$T/dlq.txt' | grep -q 'is not accepted on'"
pd_check "wrong spec version" bash -c "grep 'ce_id=bad-spec,' '$T/dlq.txt' | grep -q 'ce_specversion'"
pd_check "missing ce_id" grep -q "postdeploy_error=missing header ce_id" "$T/dlq.txt"
pd_check "unsupported content type" bash -c "grep 'ce_id=xml,' '$T/dlq.txt' | grep -q 'application/xml'"
pd_check "another schema's fingerprint" bash -c "grep 'ce_id=wrong-fp,' '$T/dlq.txt' | grep -q 'fingerprint'"
pd_eq "oversize record" "record of 70000 bytes is over max_event_bytes (65536)" "$(reason too-big)"

for a in t.segv t.hang t.flood t.missing; do
	pd_rc rc pd_cli deploy --one $a --release 1 --tenant acme --wait --timeout 60s
done
pd_report
pd_eq "segfault: failed" failed "$(pd_state acme t.segv state)"
pd_check "segfault: says which signal" grep -q "killed by signal 11" "$T/report.json"
pd_eq "hang: timed out" timed_out "$(pd_state acme t.hang state)"
pd_eq "100 MB of output: succeeded" succeeded "$(pd_state acme t.flood state)"
pd_eq "missing executable: exit code 127" 127 "$(pd_state acme t.missing exit_code)"
pd_check "missing executable: named" grep -q "cannot execute '$T/no/such/program'" "$T/report.json"
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$PD_REACTOR_PID/status")
# AddressSanitizer's shadow memory and quarantine come on top in the
# sanitizer build: the bound is what the output must not add, not them.
limit_mb=64
ldd "$PD_BIN/postdeploy-reactor" 2>/dev/null | grep -q libasan && limit_mb=128
pd_check "the reactor's peak memory stayed under $limit_mb MB ($hwm kB) after 100 MB of output" [ "$hwm" -lt $((limit_mb * 1024)) ]
kill -0 "$PD_REACTOR_PID"
pd_eq "the reactor is still running" 0 "$?"
pd_reactor_stop
pd_done
