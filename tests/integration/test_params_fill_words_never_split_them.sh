#!/usr/bin/env bash
# Parameters: an action declares them (params = batch_size, since?), a
# deploy --one gives them (--param NAME=VALUE). A value fills {param.NAME}
# inside one word after the split, never adding or splitting words, and
# POSTDEPLOY_PARAM_NAME. The CLI refuses a malformed one (exit 2); the
# reactor refuses, REJECTED with the reason, a parameter the action does
# not declare or a required one missing, even from an event sent with kcat.
source "$(dirname "$0")/lib.sh"
pd_require_broker
EVENTS=pdtest.$RUN_ID.events
cat >"$T/argv.sh" <<'SH'
#!/bin/sh
# One line per argument, then the parameters' environment.
out="$MARKERS/$1.argv"
shift
printf '%s\n' "$#" >"$out"
for a in "$@"; do printf '[%s]\n' "$a" >>"$out"; done
printf 'env batch_size=[%s] since=[%s]\n' "$POSTDEPLOY_PARAM_BATCH_SIZE" "${POSTDEPLOY_PARAM_SINCE-unset}" >>"$out"
SH
chmod +x "$T/argv.sh"
pd_config <<INI
[action t.p]
run = $T/argv.sh {tenant} --batch={param.batch_size} "{param.since}" x{param.nope}
params = batch_size, since?
[action t.q]
run = $T/argv.sh {tenant}
INI
mkdir -p "$T/markers"
pd_reactor_start
hostile="a b \"c\" 'd'; rm -rf / \$(id)"
pd_rc rc pd_cli deploy --one t.p --param batch_size=500 --param "since=$hostile" \
	--release 1 --tenant acme --wait --timeout 60s
pd_eq "deploy --one with parameters exits 0" 0 "$rc"
pd_eq "the command got 3 words: the values added none" 3 "$(head -1 "$T/markers/acme.argv")"
pd_eq "{param.batch_size} filled inside its word" "[--batch=500]" "$(sed -n 2p "$T/markers/acme.argv")"
pd_eq "a value with blanks, quotes and ; is one word, as given" "[$hostile]" "$(sed -n 3p "$T/markers/acme.argv")"
pd_eq "an undeclared {param.nope} stays literal" "[x{param.nope}]" "$(sed -n 4p "$T/markers/acme.argv")"
pd_eq "POSTDEPLOY_PARAM_* carry the values" "env batch_size=[500] since=[$hostile]" "$(sed -n 5p "$T/markers/acme.argv")"

pd_rc rc pd_cli deploy --one t.p --param batch_size=7 --release 1 --tenant globex --wait --timeout 60s
pd_eq "an optional parameter may be left out" 0 "$rc"
pd_eq "it fills its word with nothing; no variable" "[] env batch_size=[7] since=[unset]" \
	"$(sed -n 3p "$T/markers/globex.argv") $(sed -n 5p "$T/markers/globex.argv")"

pd_rc rc pd_cli deploy --one t.p --release 1 --tenant initech
pd_eq "the CLI refuses a required parameter missing (the registry says it)" 2 "$rc"
pd_check "naming it" grep -q "action t.p needs --param batch_size=VALUE" "$T/out"
pd_rc rc pd_cli deploy --one t.p --param batch_size=1 --param evil=1 --release 1 --tenant initech
pd_eq "the CLI refuses a parameter the action does not declare" 2 "$rc"
pd_check "naming it" grep -q "action t.p declares no parameter 'evil'" "$T/out"
pd_rc rc pd_cli deploy --one t.p --no-check --release 1 --tenant initech --wait --timeout 60s
pd_eq "sent anyway (--no-check): the reactor refuses the run (exit 1)" 1 "$rc"
pd_check "REJECTED, saying which" grep -q "REJECTED.*missing required parameter 'batch_size'" "$T/out"
pd_eq "and nothing ran" 0 "$(pd_lines "$T/markers/initech.argv")"

pd_rc rc pd_cli deploy --one t.p --param 'Bad=1' --release 1 --tenant acme
pd_eq "the CLI refuses a malformed name" 2 "$rc"
pd_check "naming it" grep -q -- "--param wants NAME=VALUE" "$T/out"
pd_rc rc pd_cli deploy --one t.p --param batch_size=1 --param batch_size=2 --release 1 --tenant acme
pd_eq "the CLI refuses a parameter given twice" 2 "$rc"
pd_rc rc pd_cli deploy --auto --param batch_size=1 --release 1 --tenant acme
pd_eq "--param without --one is a usage error" 2 "$rc"
pd_rc rc pd_cli deploy --one t.p --param "batch_size=$(head -c 5000 /dev/zero | tr '\0' x)" --release 1 --tenant acme
pd_eq "a value over 4096 bytes is refused" 2 "$rc"

# A hostile event from any Kafka client: the reactor's check holds.
kid=kcat-$RUN_ID
printf '{"release":"2","selection":"ONE","actions":["t.p"],"params":{"batch_size":"1","evil":"x"}}' |
	kcat -P -b "$PD_BROKERS" -t "$EVENTS" -k umbrella \
		-H ce_specversion=1.0 -H "ce_id=$kid" -H ce_source=test/kcat \
		-H ce_type=release.deployed -H ce_tenant=umbrella \
		-H content-type=application/json
# A tenant's events are handled in order: once a later deploy of umbrella
# has finished, the hostile one before it has been too.
pd_rc rc pd_cli deploy --one t.q --release 3 --tenant umbrella --wait --timeout 60s
pd_eq "a later deploy of the same tenant runs" 0 "$rc"
pd_report
pd_eq "an undeclared parameter from kcat: refused (the report shows it failed)" failed "$(pd_state umbrella t.p state)"
pd_check "with the reason" grep -q "parameter 'evil' is not declared by action t.p" <<<"$(pd_state umbrella t.p error)"
pd_eq "and t.p did not run (t.q's run wrote 0 arguments)" "0" "$(head -1 "$T/markers/umbrella.argv")"
pd_reactor_stop

# A C action (plugin ABI 2) reads them with ctx->param: the test plugin's
# good.params logs batch_size and since.
GOOD=$PD_BUILD_DIR/tests/plugins/good.so
[ -f "$GOOD" ] || pd_die "the test plugin is not built: $GOOD"
sed -i "s|^\[reactor\]|[reactor]\nplugins = $GOOD|" "$T/postdeploy.ini"
pd_reactor_start
# The CLI checks names and parameters against the newest registry: await
# the one this reactor publishes (each `actions` reads the topic anew).
for _ in $(seq 300); do
	pd_cli actions --format names 2>/dev/null | grep -qx good.params && break
done
pd_rc rc pd_cli deploy --one good.params --param batch_size=500 --release 4 --tenant acme --wait --timeout 60s
pd_eq "a plugin action with a parameter exits 0 (its registry says any: *)" 0 "$rc"
pd_report
pd_eq "the plugin read it; since, not given, is NULL" "batch_size=500 since=-" \
	"$(pd_state acme good.params output_tail | tr '\n' ' ' | sed 's/ *$//')"
pd_reactor_stop
pd_done
