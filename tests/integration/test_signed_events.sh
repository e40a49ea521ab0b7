#!/usr/bin/env bash
# With a signing key, the reactor runs only events signed with it: an
# unsigned event, one signed with another key, one whose value was changed
# after signing, and one replayed under another tenant's key all go to the
# dead-letter topic with the reason, and run nothing.
source "$(dirname "$0")/lib.sh"
pd_require_broker
pd_action_script
head -c 32 /dev/urandom | base64 >"$T/key"; chmod 600 "$T/key"
head -c 32 /dev/urandom | base64 >"$T/other.key"; chmod 600 "$T/other.key"
pd_config <<INI
[action t.ok]
run = $T/act.sh ok {tenant} 0
auto = true
INI
sed -i "s|^\[reactor\]|[reactor]\nsigning_key = $T/key|; s|^\[cli\]|[cli]\nsigning_key = $T/key|" "$T/postdeploy.ini"
sed "s|signing_key = $T/key|signing_key = $T/other.key|" "$T/postdeploy.ini" >"$T/other.ini"
grep -v "^signing_key" "$T/postdeploy.ini" >"$T/unsigned.ini"
EVENTS=pdtest.$RUN_ID.events DLQ=pdtest.$RUN_ID.dlq
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

# A last signed deploy: when it is done, everything before it on its
# partition has been handled too; the others are awaited on the DLQ.
pd_rc rc pd_cli deploy --one t.ok --release 3 --tenant acme --wait --timeout 60s
pd_eq "a signed deploy after them still runs" 0 "$rc"
for _ in $(seq 1 100); do
	kcat -C -b "$PD_BROKERS" -t "$DLQ" -o beginning -e -q -f '%h\n' >"$T/dlq.txt" 2>/dev/null || true
	[ "$(grep -c postdeploy_error "$T/dlq.txt")" -ge 4 ] && break
	kcat -b "$PD_BROKERS" -L -t "$DLQ" >/dev/null 2>&1
done
pd_eq "four dead letters" 4 "$(grep -c postdeploy_error "$T/dlq.txt")"
pd_check "unsigned: reason given" grep -q "postdeploy_error=unsigned event (no ce_signature header)" "$T/dlq.txt"
pd_eq "wrong key, changed value, other tenant's key: bad signature" 3 "$(grep -c 'postdeploy_error=bad signature' "$T/dlq.txt")"
pd_eq "nothing ran for the rejected events" "0 0 0" \
	"$(pd_lines "$T/markers/globex.ok") $(pd_lines "$T/markers/initech.ok") $(pd_lines "$T/markers/umbrella.ok")"
pd_eq "acme ran only its two signed deploys" 2 "$(pd_lines "$T/markers/acme.ok")"
chmod 644 "$T/key"
pd_rc rc pd_cli deploy --auto --release 4 --tenant acme
pd_eq "a key readable by others is refused by the CLI" 2 "$rc"
pd_check "with the reason" grep -q "readable by others" "$T/out"
pd_reactor_stop
pd_done
