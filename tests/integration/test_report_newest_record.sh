#!/usr/bin/env bash
# The report shows the newest record of each tenant/action key, as a
# compacted topic would keep it, whatever records came before: a newest
# record that does not decode hides the key (an older one does not take its
# place), a tombstone changes nothing, headers are checked as on any
# consumed record, and a header value that differs on every record (here
# ce_source, more values than the report keeps once) is still given back.
# Records are written with kcat, as JSON, so that each header can be wrong.
source "$(dirname "$0")/lib.sh"
pd_require_broker
pd_config </dev/null
# Makes the topics (no reactor runs: nothing consumes the event).
pd_rc rc pd_cli deploy --auto --release 0 --tenant nobody
pd_eq "topics made" 0 "$rc"
RESULTS=pdtest.$RUN_ID.results
NOW=1764090000000

# put KEY VALUE HEADER=VALUE...: one record on partition 0 (one line: kcat
# reads a record per line).
put() {
	local key=$1 val=$2 h args=()
	shift 2
	for h in "$@"; do args+=(-H "$h"); done
	printf '%s|%s' "$key" "$val" |
		kcat -b "$PD_BROKERS" -P -t "$RESULTS" -p 0 -K '|' -Z "${args[@]}"
}
# hdrs TYPE [HEADER=VALUE...]: valid CloudEvents headers, then the extra.
hdrs() {
	local type=$1
	shift
	echo ce_specversion=1.0 ce_id="id-$RANDOM$RANDOM" ce_source=test/1 \
		ce_type="$type" ce_time=2026-11-25T10:00:00.000Z \
		content-type=application/json "$@"
}
started() { # TENANT ACTION ATTEMPT
	printf '{"action":"%s","tenant":"%s","release":"1.0.%s","trigger_id":"t",' "$2" "$1" "$3"
	printf '"attempt":%s,"started_at":%s,"reactor":"r1"}' "$3" "$NOW"
}
finished() { # TENANT ACTION ATTEMPT STATUS [OUTPUT_TAIL (JSON-escaped)]
	printf '{"action":"%s","tenant":"%s","release":"1.0.%s","trigger_id":"t",' "$2" "$1" "$3"
	printf '"attempt":%s,"started_at":%s,"reactor":"r1","status":"%s",' "$3" "$NOW" "$4"
	printf '"exit_code":null,"duration_ms":5,"error":null,"output_tail":"%s",' "${5:-}"
	printf '"finished_at":%s,"retrying":false}' $((NOW + 1000 * $3))
}

reg() { printf '{"id":"%s","auto":%s,"policy":"once","description":"","after":[]}' "$@"; }
put registry "{\"reactor\":\"r1\",\"published_at\":$NOW,\"actions\":[$(reg a1 true),$(reg a2 false),$(reg a3 true)]}" \
	$(hdrs registry.published)
put t1/a1 "$(started t1 a1 1)" $(hdrs action.started ce_tenant=t1)
put t1/a1 "$(finished t1 a1 1 SUCCEEDED)" $(hdrs action.finished ce_tenant=t1)
put t1/a2 "$(finished t1 a2 1 FAILED)" $(hdrs action.finished ce_tenant=t1)
put t1/a2 "$(finished t1 a2 2 SUCCEEDED)" ce_specversion=2.0 ce_id=x \
	ce_source=test/1 ce_type=action.finished content-type=application/json
put t1/a3 "$(finished t1 a3 1 FAILED)" $(hdrs action.finished ce_tenant=t1)
put t1/a3 "" $(hdrs action.finished ce_tenant=t1)
put t2/a1 "$(finished t2 a1 1 SUCCEEDED)" $(hdrs action.finished ce_tenant=t9)
put t2/a2 "$(started t2 a2 4)" $(hdrs action.started)
put t2/a3 "$(finished t2 a3 1 SUCCEEDED)" $(hdrs action.finished ce_tenant=t2) ce_id=
for i in 1 2 3 4 5 6 7 8 9 10; do
	put t3/a1 "$(finished t3 a1 "$i" FAILED)" ce_specversion=1.0 ce_id="i$i" \
		ce_source="src/$i" ce_type=action.finished content-type=application/json
done
# Escapes as jansson writes them with JSON_ENSURE_ASCII, which the report
# always printed: upper-case \uXXXX, surrogate pairs, '/' as is.
put t4/a1 "$(finished t4 a1 1 FAILED '\u00e9 \ud83d\ude00 \u001b \"q\" a/b')" \
	$(hdrs action.finished ce_tenant=t4)

pd_report
pd_eq "started then finished: the finished one" succeeded "$(pd_state t1 a1 state)"
pd_eq "newest does not decode: no older one instead" pending "$(pd_state t1 a2 state)"
pd_eq "a tombstone changes nothing" failed "$(pd_state t1 a3 state)"
pd_eq "ce_tenant other than the data's: not shown" pending "$(pd_state t2 a1 state)"
pd_eq "no ce_tenant: the data's tenant" running "$(pd_state t2 a2 state)"
pd_eq "empty ce_id: not shown" pending "$(pd_state t2 a3 state)"
pd_eq "ten sources: the newest record" 1.0.10 "$(pd_state t3 a1 release)"
pd_check "JSON escapes as before" grep -qF \
	'"output_tail": "\u00E9 \uD83D\uDE00 \u001B \"q\" a/b",' "$T/report.json"
pd_done
