#!/usr/bin/env bash
# With a signing key, the reactor runs only events signed with it: an
# unsigned event, one signed with another key, one whose value was changed
# after signing, one replayed under another tenant's key, and a correctly
# signed one whose ce_time is two days old (or an hour ahead) all go to the
# dead-letter topic with the reason, and run nothing. The reactor signs its
# results in turn: a forged SUCCEEDED on the results topic, unsigned or
# signed with another key, is named and not counted by deploy --wait and
# report.
source "$(dirname "$0")/lib.sh"
pd_require_broker
pd_action_script
head -c 32 /dev/urandom | base64 >"$T/key"; chmod 600 "$T/key"
head -c 32 /dev/urandom | base64 >"$T/other.key"; chmod 600 "$T/other.key"
# An action that fails, but only once the test opens its gate: a forged
# result can be put on the topic while the real one is still to come.
cat >"$T/gate.sh" <<'SH'
#!/bin/sh
echo "gated $1" >>"$MARKERS/$1.gated"
while [ ! -e "$2" ]; do sleep 0.05; done
exit 1
SH
chmod +x "$T/gate.sh"
pd_config <<INI
[action t.ok]
run = $T/act.sh ok {tenant} 0
auto = true
[action t.gated]
run = $T/gate.sh {tenant} $T/open
INI
# The signing recipe of docs/SIGNING.md, as another producer would use it:
# prints the kcat -H arguments of a record signed with key file $1, record
# key $2, value file $3 and the headers NAME=VALUE that follow.
cat >"$T/sign.py" <<'PY'
import hashlib, hmac, sys
SIGNED_HEADERS = ("ce_specversion", "ce_id", "ce_source", "ce_type",
                  "ce_time", "ce_tenant", "content-type")
secret = open(sys.argv[1], "rb").read().rstrip(b"\r\n")
key, value = sys.argv[2].encode(), open(sys.argv[3], "rb").read()
headers = dict(a.split("=", 1) for a in sys.argv[4:])
msg = b""
for name in SIGNED_HEADERS:
    if name in headers:
        msg += b"%s=%s\n" % (name.encode(), headers[name].encode())
    else:
        msg += b"%s\n" % name.encode()
msg += b"key=%s\n" % key + value
headers["ce_signature"] = ("hmac-sha256=" +
                           hmac.new(secret, msg, hashlib.sha256).hexdigest())
for name, v in headers.items():
    print("-H")
    print("%s=%s" % (name, v))
PY
# pd_await "what" command...: waits up to 30 s for command to succeed.
pd_await() {
	local what=$1; shift
	for _ in $(seq 1 600); do "$@" && break; sleep 0.05; done
	pd_check "$what" "$@"
}
# pd_publish_signed KEYFILE TOPIC RECORD_KEY VALUE_FILE NAME=VALUE...
pd_publish_signed() {
	local args
	mapfile -t args < <(python3 "$T/sign.py" "$1" "$3" "$4" "${@:5}")
	kcat -P -b "$PD_BROKERS" -t "$2" -k "$3" "${args[@]}" "$4"
}
sed -i "s|^\[reactor\]|[reactor]\nsigning_key = $T/key|; s|^\[cli\]|[cli]\nsigning_key = $T/key|" "$T/postdeploy.ini"
sed "s|signing_key = $T/key|signing_key = $T/other.key|" "$T/postdeploy.ini" >"$T/other.ini"
grep -v "^signing_key" "$T/postdeploy.ini" >"$T/unsigned.ini"
EVENTS=pdtest.$RUN_ID.events DLQ=pdtest.$RUN_ID.dlq RESULTS=pdtest.$RUN_ID.results
pd_reactor_start

pd_rc rc pd_cli deploy --auto --release 1 --tenant acme --wait --timeout 60s
pd_eq "a signed deploy runs" 0 "$rc"
pd_eq "its action ran" 1 "$(pd_lines "$T/markers/acme.ok")"

"$PD_BIN/postdeploy" deploy --auto --release 2 --tenant globex -c "$T/unsigned.ini" >/dev/null
"$PD_BIN/postdeploy" deploy --auto --release 2 --tenant initech -c "$T/other.ini" >/dev/null
# A signed event copied with its value changed, and one replayed under
# another tenant's key: kcat re-publishes the first signed event's headers.
kcat -C -b "$PD_BROKERS" -t "$EVENTS" -o beginning -c 1 -e -q -f '%h' >"$T/hdrs"
args=()
IFS=, read -ra pairs <"$T/hdrs" || true # no newline at the end
for p in "${pairs[@]}"; do args+=(-H "$p"); done
printf '{"release":"9","selection":"ALL"}' |
	kcat -P -b "$PD_BROKERS" -t "$EVENTS" -k acme "${args[@]/content-type=application\/avro/content-type=application/json}"
kcat -C -b "$PD_BROKERS" -t "$EVENTS" -o beginning -c 1 -e -q -f '%s' >"$T/value"
kcat -P -b "$PD_BROKERS" -t "$EVENTS" -k umbrella "${args[@]}" "$T/value"

# Signed as the CLI signs, but with a ce_time two days old, or an hour
# ahead: dead-lettered for their age. The same event stamped now runs, so
# the refusals are about the time and nothing else.
printf '{"release":"8","selection":"AUTO","requested_by":"replayer"}' >"$T/old.json"
for t in hooli:"-2 days" vandelay:"+1 hour" soylent:now; do
	tenant=${t%%:*}
	pd_publish_signed "$T/key" "$EVENTS" "$tenant" "$T/old.json" \
		ce_specversion=1.0 ce_id="$(cat /proc/sys/kernel/random/uuid)" \
		ce_source=replayer ce_type=release.deployed \
		ce_time="$(date -u -d "${t#*:}" +%Y-%m-%dT%H:%M:%S.000Z)" \
		ce_tenant="$tenant" content-type=application/json
done

# A last signed deploy: when it is done, everything before it on its
# partition has been handled too; the others are awaited on the DLQ.
pd_rc rc pd_cli deploy --one t.ok --release 3 --tenant acme --wait --timeout 60s
pd_eq "a signed deploy after them still runs" 0 "$rc"
for _ in $(seq 1 100); do
	kcat -C -b "$PD_BROKERS" -t "$DLQ" -o beginning -e -q -f '%h\n' >"$T/dlq.txt" 2>/dev/null || true
	[ "$(grep -c postdeploy_error "$T/dlq.txt")" -ge 6 ] && break
	kcat -b "$PD_BROKERS" -L -t "$DLQ" >/dev/null 2>&1
done
pd_eq "six dead letters" 6 "$(grep -c postdeploy_error "$T/dlq.txt")"
pd_check "two days old: the age is the reason" grep -q \
	"ce_tenant=hooli.*postdeploy_error=event too old: ce_time [0-9T:.Z-]* is 1728[0-9][0-9] s old, over max_event_age (86400 s)" "$T/dlq.txt"
pd_check "an hour ahead: the clock skew is the reason" grep -q \
	"ce_tenant=vandelay.*postdeploy_error=ce_time [0-9T:.Z-]* is 3[56][0-9][0-9] s in the future (over 300 s of clock skew)" "$T/dlq.txt"
pd_await "the same event stamped now runs" test -s "$T/markers/soylent.ok"
pd_eq "the old and the early one ran nothing" "0 0" \
	"$(pd_lines "$T/markers/hooli.ok") $(pd_lines "$T/markers/vandelay.ok")"
pd_check "unsigned: reason given" grep -q "postdeploy_error=unsigned event (no ce_signature header)" "$T/dlq.txt"
pd_eq "wrong key, changed value, other tenant's key: bad signature" 3 "$(grep -c 'postdeploy_error=bad signature' "$T/dlq.txt")"
pd_eq "nothing ran for the rejected events" "0 0 0" \
	"$(pd_lines "$T/markers/globex.ok") $(pd_lines "$T/markers/initech.ok") $(pd_lines "$T/markers/umbrella.ok")"
pd_eq "acme ran only its two signed deploys" 2 "$(pd_lines "$T/markers/acme.ok")"

# A forged action.finished SUCCEEDED for the gated action, unsigned, put on
# the results topic while the action still runs: deploy --wait names it
# and waits on; the real outcome, FAILED, decides its exit status.
pd_cli deploy --one t.gated --release 5 --tenant acme --wait --timeout 60s \
	>"$T/wait.out" 2>"$T/wait.err" &
wait_pid=$!
pd_await "the gated action is running" test -s "$T/markers/acme.gated"
trigger=$(sed -n 's/^published release.deployed \([^ ]*\) .*/\1/p' "$T/wait.out")
# Its times are a second ahead: report keeps a key's newest record by its
# time, and a forger can claim any.
forge() { # forge FILE: an action.finished SUCCEEDED for acme/t.gated
	local at=$(($(date +%s%3N) + 1000))
	printf '{"action":"t.gated","tenant":"acme","release":"5","trigger_id":"%s","attempt":1,"started_at":%s,"reactor":"forger","status":"SUCCEEDED","exit_code":0,"duration_ms":1,"error":null,"output_tail":"","finished_at":%s,"retrying":false}' \
		"$trigger" "$at" "$at" >"$1"
}
forge "$T/forged.json"
forged_hdrs=(ce_specversion=1.0 ce_id=forged-1 ce_source=postdeploy-reactor/forger
	ce_type=action.finished ce_time="$(date -u +%Y-%m-%dT%H:%M:%S.000Z)"
	ce_tenant=acme content-type=application/json)
kcat -P -b "$PD_BROKERS" -t "$RESULTS" -k acme/t.gated \
	"${forged_hdrs[@]/#/-H}" "$T/forged.json"
pd_await "deploy --wait names the forged record and why" grep -q \
	"warning: rejected $RESULTS \[[0-9]*\] @[0-9]*: unsigned event (no ce_signature header) (not counted)" "$T/wait.err"
touch "$T/open"
rc=0; wait "$wait_pid" || rc=$?
pd_eq "deploy --wait exits 1: the real FAILED counts, the forged SUCCEEDED does not" 1 "$rc"
pd_check "it says the real outcome" grep -q "acme: t.gated .*FAILED (exit 1)" "$T/wait.out"
pd_check "and counts the rejected record" grep -q \
	"warning: 1 record(s) on $RESULTS rejected: not signed with \[cli\] signing_key; not counted" "$T/wait.err"

# After the real FAILED, a SUCCEEDED signed with another key: the newest
# record of acme/t.gated, yet report keeps the real state.
forge "$T/forged2.json"
pd_publish_signed "$T/other.key" "$RESULTS" acme/t.gated "$T/forged2.json" \
	"${forged_hdrs[@]/forged-1/forged-2}"
rc=0; pd_cli report --format json >"$T/report.json" 2>"$T/report.err" || rc=$?
pd_eq "report runs" 0 "$rc"
pd_eq "report shows the real state" failed "$(pd_state acme t.gated state)"
pd_check "report names the record signed with another key" grep -q \
	"warning: rejected $RESULTS \[[0-9]*\] @[0-9]*: bad signature (not counted)" "$T/report.err"
pd_check "and counts both forged records" grep -q "warning: 2 record(s) on $RESULTS rejected" "$T/report.err"
pd_rc rc pd_cli report
pd_check "the table says so too" grep -q "^2 record(s) on $RESULTS rejected (not signed with \[cli\] signing_key): not in this report" "$T/out"
"$PD_BIN/postdeploy" report --format json -c "$T/unsigned.ini" >"$T/report.json"
pd_eq "without a key, report believes the newest record, as before" succeeded "$(pd_state acme t.gated state)"

chmod 644 "$T/key"
pd_rc rc pd_cli deploy --auto --release 4 --tenant acme
pd_eq "a key readable by others is refused by the CLI" 2 "$rc"
pd_check "with the reason" grep -q "readable by others" "$T/out"
pd_reactor_stop
pd_done
