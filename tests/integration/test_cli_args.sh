#!/usr/bin/env bash
# The CLI as a careful user finds it (issue 13): every help text lists what
# its command accepts, typos get a "did you mean", options that swallow the
# next option are named, a repeated --tenant publishes once, an unreachable
# broker is one line saying where the address came from and what to check,
# --wait's --timeout bounds the wait for a broker, and a [topics] the
# broker does not have is named instead of being created.
source "$(dirname "$0")/lib.sh"
pd_require_broker
pd_action_script
pd_config <<INI
[action t.backfill]
run = $T/act.sh backfill {tenant} 0
auto = true
INI
P=$PD_BIN/postdeploy

expect() { # expect "what" status pattern command...
	local what=$1 want=$2 pat=$3 rc=0; shift 3
	"$@" >"$T/out" 2>&1 || rc=$?
	pd_eq "$what: exit status" "$want" "$rc"
	pd_check "$what: says '$pat'" grep -q -- "$pat" "$T/out"
}

# --- Help: every command's --help names each option it accepts -----------
declare -A OPTS=(
	[deploy]="--auto --all --one --release --environment --tenant --all-tenants --tenants-file --requested-by --wait --timeout --no-check --dry-run --format --param"
	[skip]="--all-pending --release --tenant --all-tenants --tenants-file --requested-by --wait --timeout --no-check"
	[reset]="--all --release --tenant --all-tenants --tenants-file --requested-by --wait --timeout --no-check"
	[cancel]="--all-running --tenant --all-tenants --tenants-file --requested-by --wait --timeout --no-check"
	[pause]="--tenant --all-tenants --tenants-file --requested-by --wait --timeout"
	[resume]="--tenant --all-tenants --tenants-file --requested-by --wait --timeout"
	[report]="--tenant --format --timeout"
	[actions]="--format"
	[serve]="--listen"
)
COMMON="--config --brokers --verbose --help"
# The lists above are the programs' own: each long option in the sources is
# in one of them, so an option added without help text fails here.
for f in deploy report actions serve; do
	case $f in deploy) cmds="deploy skip reset cancel pause resume" ;; *) cmds=$f ;; esac
	listed=" $COMMON"
	for c in $cmds; do listed+=" ${OPTS[$c]}"; done
	for o in $(grep -o '{"[a-z-]*", *[a-z_]*argument' "$PD_SOURCE_DIR/producer/$f.c" "$PD_SOURCE_DIR/producer/cli.h" |
		sed 's/.*{"\([a-z-]*\)".*/\1/' | sort -u); do
		pd_check "--$o (accepted by ${cmds// /\/}) is in the list checked" \
			grep -qw -- "--$o" <<<"$listed"
	done
done
# The scan above reads each option from one line: a layout that splits an
# entry would make it check less without failing.
pd_eq "the common options are read from cli.h" "brokers config help verbose " \
	"$(grep -o '{"[a-z-]*", *[a-z_]*argument' "$PD_SOURCE_DIR/producer/cli.h" |
		sed 's/.*{"\([a-z-]*\)".*/\1/' | sort -u | tr '\n' ' ')"
for c in "${!OPTS[@]}"; do
	rc=0; "$P" "$c" --help >"$T/help.$c" 2>&1 || rc=$?
	pd_eq "$c --help exits 0" 0 "$rc"
	missing=
	for o in ${OPTS[$c]} $COMMON; do
		grep -q -- "$o\b" "$T/help.$c" || missing+=" $o"
	done
	pd_eq "$c --help names each of its options" "" "$missing"
	rc=0; "$P" help "$c" >"$T/help2.$c" 2>&1 || rc=$?
	pd_eq "help $c exits 0" 0 "$rc"
	pd_check "help $c is $c --help" cmp -s "$T/help.$c" "$T/help2.$c"
done
pd_check "skip --help describes skip" grep -q "as done for each tenant without running" "$T/help.skip"
pd_check "skip --help has no deploy options" bash -c "! grep -qE -- '--(auto|one|environment)\b' '$T/help.skip'"
pd_check "reset --help describes reset" grep -q "Forgets that the named actions ran" "$T/help.reset"
pd_check "reset --help's --wait is about resets" grep -q "wait until the reactors have forgotten" "$T/help.reset"
pd_check "cancel --help describes cancel" grep -q "Stops the named actions where they are running now" "$T/help.cancel"
pd_check "pause --help says what a pause holds" grep -q "Holds new runs for each tenant until" "$T/help.pause"
pd_check "resume --help says what it ends" grep -q "Ends a pause" "$T/help.resume"
pd_check "cancel --help has no --release" bash -c "! grep -q -- '--release' '$T/help.cancel'"
rc=0; "$P" help >"$T/help" 2>&1 || rc=$?
pd_eq "help exits 0" 0 "$rc"
for c in deploy skip reset cancel pause resume report actions serve help; do
	pd_check "help lists $c" grep -qE "^  $c " "$T/help"
done
rc=0; "$P" help help >"$T/help2" 2>&1 || rc=$?
pd_eq "help help is help" "0 same" "$rc $(cmp -s "$T/help" "$T/help2" && echo same)"

# --- Typos: "did you mean" ------------------------------------------------
expect "a mistyped command" 2 "unknown command 'deplyo'; did you mean 'deploy'?" "$P" deplyo
expect "help for a mistyped command" 2 "did you mean 'report'?" "$P" help reprot
expect "a command far from any" 2 "unknown command 'frobnicate'$" "$P" frobnicate

# --- Option mistakes: named, in the command's name, exit 2 at once ---------
expect "--one swallowing --release" 2 "postdeploy deploy: --one needs a value, not the option '--release'" \
	pd_cli deploy --one --release 1
expect "--release swallowing -c" 2 "postdeploy deploy: --release needs a value, not the option '-c'" \
	"$P" deploy --auto --release -c "$T/postdeploy.ini"
expect "report --tenant swallowing --format" 2 "postdeploy report: --tenant needs a value, not the option '--format'" \
	pd_cli report --tenant --format json
expect "an unknown option" 2 "^postdeploy skip: unknown option '--bogus'" pd_cli skip t.backfill --bogus
expect "a missing value" 2 "^postdeploy actions: --format needs a value" "$P" actions --format
expect "--timeout without --wait" 2 "--timeout 5s is how long --wait waits" \
	pd_cli deploy --auto --release 1 --timeout 5s
expect "an empty --environment" 2 "--environment wants a name" pd_cli deploy --auto --release 1 --environment ''
expect "an empty --requested-by" 2 "--requested-by wants a name" pd_cli skip t.backfill --requested-by=
start=$(date +%s%N)
expect "-b ''" 2 "-b wants HOST:PORT" "$P" deploy --auto --release 1 -b ''
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "     -b '' refused in $ms ms"
pd_check "-b '' is refused at once (${ms} ms < 1000)" test "$ms" -lt 1000

# --- An unreachable broker: one line, where the address came from ---------
DEAD=127.0.0.1:9
rc=0; "$P" deploy --auto --release 1 -b $DEAD --wait --timeout 2s >"$T/out" 2>"$T/err" || rc=$?
pd_eq "deploy to a dead port: exit 4" 4 "$rc"
pd_eq "its stderr is exactly one line" 1 "$(wc -l <"$T/err")"
pd_check "naming the address, where it came from and what to check" grep -qx \
	"postdeploy deploy: cannot reach Kafka at $DEAD (from -b): .*Connection refused: is a broker running there? try -b HOST:PORT" "$T/err"
rc=0; "$P" report -b $DEAD --timeout 2s >"$T/out" 2>"$T/err" || rc=$?
pd_eq "report from a dead port: exit 4, one line" "4 1" "$rc $(wc -l <"$T/err")"
rc=0; "$P" deploy --auto --release 1 -b $DEAD --wait --timeout 2s -v >"$T/out" 2>"$T/err" || rc=$?
pd_check "with -v, librdkafka's own lines come too" test "$(wc -l <"$T/err")" -gt 1

# --wait --timeout bounds the wait for the broker's first answer (it was a
# fixed 10 s).
start=$(date +%s%N)
rc=0; "$P" deploy --auto --release 1 -b $DEAD --wait --timeout 2s >"$T/out" 2>&1 || rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "     deploy --wait --timeout 2s to a dead port gave up after $ms ms"
pd_check "deploy --wait --timeout 2s gives up within 4 s (${ms} ms)" test "$ms" -lt 4000

# A dev-brokers file left by a reactor that is gone is named as such.
mkdir -p "$T/home/.cache/postdeploy"
sh -c 'exit 0' & gone=$!; wait $gone
printf '%s\n%s\n' "$DEAD" "$gone" >"$T/home/.cache/postdeploy/dev-brokers"
rc=0; HOME=$T/home XDG_CACHE_HOME='' POSTDEPLOY_BROKERS='' \
	"$P" report --timeout 1s >"$T/out" 2>"$T/err" || rc=$?
pd_eq "report through a stale dev-brokers file: exit 4" 4 "$rc"
pd_check "says the file and the reactor that is gone" grep -qF \
	"at $DEAD (from ~/.cache/postdeploy/dev-brokers, written by a reactor that is gone (pid $gone))" "$T/err"
pd_check "and what to do" grep -qF "start \`postdeploy-reactor --dev\` again, remove that file" "$T/err"
printf '%s\n' "$DEAD" >"$T/home/.cache/postdeploy/dev-brokers"
rc=0; HOME=$T/home XDG_CACHE_HOME='' POSTDEPLOY_BROKERS='' \
	"$P" actions -X socket.connection.setup.timeout.ms=1000 >"$T/out" 2>"$T/err" || rc=$?
pd_check "a dev-brokers file without a pid is still named" grep -qF \
	"(from ~/.cache/postdeploy/dev-brokers, written by a \`postdeploy-reactor --dev\` that seems to be gone)" "$T/err"

# --- A repeated --tenant publishes once ----------------------------------
rc=0; pd_cli deploy --auto --release 1 --tenant t1 --tenant t1 --tenant t2 --tenant t1 >"$T/out" 2>&1 || rc=$?
pd_eq "deploy with --tenant t1 three times exits 0" 0 "$rc"
pd_eq "it publishes for t1 once" 1 "$(grep -c 'for tenant t1$' "$T/out")"
kcat -C -b "$PD_BROKERS" -t "pdtest.$RUN_ID.events" -e -q -f '%k\n' >"$T/keys" 2>/dev/null
pd_eq "the events topic holds one event for t1, one for t2" "t1 t2" "$(sort "$T/keys" | tr '\n' ' ' | sed 's/ $//')"

# --- [topics] that the broker does not have --------------------------------
sed "s/^results = .*/results = pdtest.$RUN_ID.typo-results/" "$T/postdeploy.ini" >"$T/typo.ini"
rc=0; "$P" deploy --auto --release 1 -c "$T/typo.ini" >"$T/out" 2>&1 || rc=$?
pd_eq "deploy with a results topic the broker lacks: exit 2" 2 "$rc"
pd_check "names the topic and where its name came from" grep -qF \
	"topic 'pdtest.$RUN_ID.typo-results' does not exist on the broker (from [topics] results in $T/typo.ini)" "$T/out"
pd_check "and does not create it beside the reactors' topics" bash -c \
	"! kcat -b '$PD_BROKERS' -L -m 10 | grep -q 'pdtest.$RUN_ID.typo-results'"
rc=0; "$P" report -c "$T/typo.ini" >"$T/out" 2>&1 || rc=$?
pd_eq "report from it: exit 2" 2 "$rc"
pd_check "report names it too" grep -qF "topic 'pdtest.$RUN_ID.typo-results' does not exist" "$T/out"

# --- With a reactor: action names, requested_by without $USER --------------
pd_reactor_start
# A deploy --wait ends once the reactor has run it, so its registry is out.
pd_rc rc pd_cli deploy --auto --release 1 --tenant acme --wait --timeout 60s
pd_eq "a deploy --wait with the reactor up exits 0" 0 "$rc"
pd_cli actions --format names >"$T/names"
pd_eq "actions --format names prints one name per line" "t.backfill" "$(cat "$T/names")"
expect "a mistyped --one name" 2 "unknown action 't.backfil'; did you mean 't.backfill'?" \
	pd_cli deploy --one t.backfil --release 1
rc=0; env -u USER "$P" skip t.backfill --tenant globex --wait --timeout 60s -c "$T/postdeploy.ini" >"$T/out" 2>&1 || rc=$?
pd_eq "skip without \$USER exits 0" 0 "$rc"
pd_report
pd_check "requested_by is the account's name, not 'unknown'" grep -q \
	"on request of $(id -un)@" <<<"$(pd_state globex t.backfill error)"
rc=0; pd_reactor_stop || rc=$?
pd_eq "the reactor stops cleanly" 0 "$rc"
pd_done
