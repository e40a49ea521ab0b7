#!/usr/bin/env bash
# Third-party clients as partners: confluent-kafka + fastavro publish an Avro
# release.deployed that the reactor runs and decode the action.finished
# results with nothing but schemas/*.avsc; kcat publishes a JSON
# release.deployed that the reactor runs. And a mixed fleet: a result
# written with the released older action.finished schema
# (schemas/history/) is read by today's report, and a deploy written with
# a schema newer than this build's is dead-lettered with a reason that
# names the fingerprints it knows, and runs nothing.
source "$(dirname "$0")/lib.sh"
pd_require_broker
PY=${PD_PYTHON:-$(bash "$PD_SOURCE_DIR/tests/interop/venv.sh")}
[ -x "$PY" ] || pd_die "no Python venv with confluent-kafka and fastavro ($PY)"
INTEROP=$PD_SOURCE_DIR/tests/interop/interop.py
pd_action_script
pd_config <<INI
[action t.ok]
run = $T/act.sh ok {tenant} 0
auto = true
[action t.fail]
run = $T/act.sh fail {tenant} 5
auto = true
INI
EVENTS=pdtest.$RUN_ID.events RESULTS=pdtest.$RUN_ID.results DLQ=pdtest.$RUN_ID.dlq
pd_reactor_start

id=$("$PY" "$INTEROP" publish "$PD_BROKERS" "$EVENTS" acme 7.0.0)
"$PY" "$INTEROP" results "$PD_BROKERS" "$RESULTS" "$id" 2 90 >"$T/avro.jsonl"
cat "$T/avro.jsonl"
field() { python3 -c 'import json,sys
for l in open(sys.argv[1]):
    d = json.loads(l)
    if d["action"] == sys.argv[2]: print(d[sys.argv[3]])' "$T/avro.jsonl" "$1" "$2"; }
pd_eq "avro: t.ok decoded by fastavro as SUCCEEDED" SUCCEEDED "$(field t.ok status)"
pd_eq "avro: t.fail decoded as FAILED" FAILED "$(field t.fail status)"
pd_eq "avro: exit code" 5 "$(field t.fail exit_code)"
pd_eq "avro: release" 7.0.0 "$(field t.ok release)"
pd_eq "avro: tenant from ce_tenant" acme "$(field t.ok tenant)"
pd_check "avro: output tail carried" bash -c "grep -q 'something went wrong' '$T/avro.jsonl'"
pd_eq "avro: the action ran" 1 "$(pd_lines "$T/markers/acme.ok")"

kid=kcat-$RUN_ID
printf '{"release":"7.0.1","selection":"AUTO","requested_by":"kcat"}' |
	kcat -P -b "$PD_BROKERS" -t "$EVENTS" -k globex \
		-H ce_specversion=1.0 -H "ce_id=$kid" -H ce_source=interop/kcat \
		-H ce_type=release.deployed -H ce_tenant=globex \
		-H content-type=application/json
"$PY" "$INTEROP" results "$PD_BROKERS" "$RESULTS" "$kid" 2 90 >"$T/json.jsonl"
pd_eq "kcat json: the action ran" 1 "$(pd_lines "$T/markers/globex.ok")"
pd_check "kcat json: release from the JSON value" grep -q '"release": "7.0.1"' "$T/json.jsonl"

# An older reactor's result, written by fastavro with the old schema file
# alone (before status RESET): the report reads it as today's schema.
"$PY" "$INTEROP" publish-finished "$PD_BROKERS" "$RESULTS" \
	"$PD_SOURCE_DIR/schemas/history/action_finished.v1.avsc" legacy t.fail FAILED 9
pd_report
pd_eq "old schema: the report reads an older reactor's result" failed "$(pd_state legacy t.fail state)"
pd_eq "old schema: its exit code" 9 "$(pd_state legacy t.fail exit_code)"
pd_eq "old schema: its error" "written with action_finished.v1.avsc" "$(pd_state legacy t.fail error)"

# A newer CLI's deploy (release.deployed with a field added): not guessed
# at, but dead-lettered naming what this reactor knows; nothing runs.
nid=$("$PY" "$INTEROP" publish-newer "$PD_BROKERS" "$EVENTS" acme 7.0.2)
why=$("$PY" "$INTEROP" dead-letter "$PD_BROKERS" "$DLQ" "$nid" 60)
echo "dead letter: $why"
pd_check "newer schema: dead-lettered as an unknown writer schema" \
	bash -c "grep -q '^unknown writer schema fingerprint 0x[0-9a-f]\{16\}; known for release.deployed: 0x53ceffd728efb991 (v2), 0xf4dc7fa8e4886444 (v1)$' <<<'$why'"
pd_eq "newer schema: nothing ran" 1 "$(pd_lines "$T/markers/acme.ok")"

rc=0; pd_reactor_stop || rc=$?
pd_eq "the reactor stops cleanly" 0 "$rc"
pd_done
