#!/usr/bin/env bash
# No event field reaches a shell. An environment string full of shell
# syntax travels from the CLI through Kafka to the action as one literal
# value ($POSTDEPLOY_ENVIRONMENT), the commands it spells never run; a
# release is one literal argv word; and a release or a tenant name with
# shell syntax is refused before anything is sent.
source "$(dirname "$0")/lib.sh"
pd_require_broker

cat >"$T/argv.sh" <<'SH'
#!/bin/sh
# argv.sh TENANT ARG...: one line per argument, then the release from the env.
out="$MARKERS/$1.argv"
shift
for a in "$@"; do printf 'arg:%s\n' "$a" >>"$out"; done
printf 'env:%s\n' "$POSTDEPLOY_RELEASE" "$POSTDEPLOY_ENVIRONMENT" >>"$out"
SH
chmod +x "$T/argv.sh"
pd_config <<INI
[action t.argv]
run = $T/argv.sh {tenant} --release={release} {release}
auto = true
INI

# Each would create a file in $T/pwned if a shell ever saw it.
HOSTILE="1.0; touch $T/pwned.semi \$(touch $T/pwned.subst) \`touch $T/pwned.tick\` | touch $T/pwned.pipe && touch $T/pwned.and > $T/pwned.redir \${HOME} * ~ 'q' \"dq\""

RELEASE=1.0+b~x_y-z

pd_reactor_start
pd_rc rc pd_cli deploy --auto --release "$HOSTILE" --tenant acme
pd_eq "a release with shell syntax is refused (exit 2)" 2 "$rc"
pd_check "it says why" grep -q "not a valid release" "$T/out"
pd_rc rc pd_cli deploy --auto --release "$RELEASE" --environment "$HOSTILE" \
	--tenant acme --wait --timeout 60s
pd_eq "the deploy with a hostile environment exits 0" 0 "$rc"
printf 'arg:--release=%s\narg:%s\nenv:%s\nenv:%s\n' "$RELEASE" "$RELEASE" \
	"$RELEASE" "$HOSTILE" >"$T/want.argv"
pd_check "the action got the release as one literal word, twice, and both in its env" \
	cmp "$T/want.argv" "$T/markers/acme.argv"
pd_check "none of the commands it spells ran" bash -c "! ls '$T'/pwned* 2>/dev/null"

pd_rc rc pd_cli deploy --auto --release 1 --tenant '../../etc'
pd_eq "a tenant that escapes a path is refused (exit 2)" 2 "$rc"
pd_rc rc pd_cli deploy --auto --release 1 --tenant 'a;touch x'
pd_eq "a tenant with shell syntax is refused (exit 2)" 2 "$rc"
pd_check "it says why" grep -q "not a valid tenant" "$T/out"

rc=0; pd_reactor_stop || rc=$?
pd_eq "the reactor stops cleanly" 0 "$rc"
pd_done
