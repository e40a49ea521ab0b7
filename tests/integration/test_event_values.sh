#!/usr/bin/env bash
# No value from an event becomes an option, and none is cut short. A release
# that reads as an option (`--delete`) is refused by the CLI (exit 2) and,
# sent by another client as JSON or Avro, dead-lettered with the release
# rule as the reason: the action never sees it. A version with build
# metadata reaches the action whole, and a 50,000-byte environment arrives
# whole in $POSTDEPLOY_ENVIRONMENT.
source "$(dirname "$0")/lib.sh"
pd_require_broker
PY=${PD_PYTHON:-$(bash "$PD_SOURCE_DIR/tests/interop/venv.sh")}
INTEROP=$PD_SOURCE_DIR/tests/interop/interop.py

cat >"$T/argv.sh" <<'SH'
#!/bin/sh
# argv.sh TENANT ARG...: one line per argument, then what the env carries.
out="$MARKERS/$1.argv"
shift
for a in "$@"; do printf 'arg:%s\n' "$a" >>"$out"; done
printf 'release:%s\n' "$POSTDEPLOY_RELEASE" >>"$out"
printf '%s' "$POSTDEPLOY_ENVIRONMENT" >"$MARKERS/$POSTDEPLOY_RELEASE.environment"
SH
chmod +x "$T/argv.sh"
pd_config <<INI
[action t.argv]
run = $T/argv.sh {tenant} {release} --release={release}
auto = true
policy = always
INI
EVENTS=pdtest.$RUN_ID.events RESULTS=pdtest.$RUN_ID.results DLQ=pdtest.$RUN_ID.dlq
RULE="a release is 1-128 of A-Z a-z 0-9 _ . + ~ -, starting with a letter or digit"

# The CLI refuses before it publishes anything.
pd_rc rc pd_cli deploy --auto --release --delete --tenant acme
pd_eq "deploy --release --delete exits 2" 2 "$rc"
pd_check "it says --release took an option for its value" \
	grep -q "\--release needs a value, not the option '--delete'" "$T/out"
pd_rc rc pd_cli deploy --auto --release=--delete --tenant acme
pd_eq "deploy --release=--delete exits 2" 2 "$rc"
pd_check "it says the release is not valid, and the rule" \
	grep -q "'--delete' is not a valid release (1-128 of" "$T/out"
pd_rc rc pd_cli deploy --auto --release=-rf --tenant acme
pd_eq "deploy --release=-rf exits 2" 2 "$rc"
pd_rc rc pd_cli skip t.argv --release --delete --tenant acme
pd_eq "skip --release --delete exits 2" 2 "$rc"
pd_rc rc pd_cli deploy --auto --release '1.0 beta' --tenant acme
pd_eq "a release with a blank exits 2" 2 "$rc"

pd_reactor_start
# Another producer is not stopped by the CLI: the reactor must refuse.
printf '%s' '{"release":"--delete","selection":"AUTO","requested_by":"kcat"}' |
	kcat -P -b "$PD_BROKERS" -t "$EVENTS" -k acme \
		-H ce_specversion=1.0 -H ce_id=opt-json -H ce_source=kcat \
		-H ce_type=release.deployed -H ce_tenant=acme -H content-type=application/json
"$PY" "$INTEROP" publish "$PD_BROKERS" "$EVENTS" acme -rf >"$T/avro-id"

# Sent after them on the same key: once it has run, they were handled.
ENVIRONMENT=$(head -c 50000 /dev/zero | tr '\0' 'e')x
pd_rc rc pd_cli deploy --auto --release 1.2.3+build.4 --environment "$ENVIRONMENT" \
	--tenant acme --wait --timeout 60s
pd_eq "the deploy of 1.2.3+build.4 exits 0" 0 "$rc"
pd_rc rc pd_cli deploy --auto --release v4.2.0-rc.1 --tenant acme --wait --timeout 60s
pd_eq "the deploy of v4.2.0-rc.1 exits 0" 0 "$rc"
printf 'arg:%s\narg:--release=%s\nrelease:%s\n' \
	1.2.3+build.4 1.2.3+build.4 1.2.3+build.4 \
	v4.2.0-rc.1 v4.2.0-rc.1 v4.2.0-rc.1 >"$T/want.argv"
pd_check "the action ran twice, with the valid releases only, as whole words" \
	cmp "$T/want.argv" "$T/markers/acme.argv"
pd_eq "\$POSTDEPLOY_ENVIRONMENT arrived whole (bytes)" 50001 \
	"$(wc -c <"$T/markers/1.2.3+build.4.environment" | tr -d ' ')"
pd_check "\$POSTDEPLOY_ENVIRONMENT arrived unchanged" \
	bash -c "printf '%s' '$ENVIRONMENT' | cmp - '$T/markers/1.2.3+build.4.environment'"

for _ in $(seq 1 50); do
	kcat -C -b "$PD_BROKERS" -t "$DLQ" -o beginning -e -q \
		-f '%h|%s\n' >"$T/dlq.txt" 2>/dev/null || true
	[ "$(grep -ac postdeploy_error "$T/dlq.txt")" -ge 2 ] && break
	kcat -b "$PD_BROKERS" -L -t "$DLQ" >/dev/null 2>&1 # one metadata round trip
done
cat -v "$T/dlq.txt"
pd_eq "two dead letters" 2 "$(grep -ac postdeploy_error "$T/dlq.txt")"
pd_check "the JSON one: the reason names the release and the rule" \
	grep -aqF "ce_id=opt-json,ce_source=kcat,ce_type=release.deployed,ce_tenant=acme,content-type=application/json,postdeploy_error=invalid release '--delete': $RULE," "$T/dlq.txt"
pd_check "the Avro one: the reason names the release and the rule" \
	bash -c "grep -aF 'ce_id=$(cat "$T/avro-id"),' '$T/dlq.txt' |
		grep -qF \"postdeploy_error=invalid release '-rf': $RULE,\""
pd_check "no action ever got either release" \
	bash -c "! grep -E -e '--delete|-rf' '$T/markers/acme.argv'"

rc=0; pd_reactor_stop || rc=$?
pd_eq "the reactor stops cleanly" 0 "$rc"
pd_done
