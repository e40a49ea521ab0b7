#!/usr/bin/env bash
# No event field reaches a shell. A release string full of shell syntax
# travels from the CLI through Kafka to the action as one literal argv word
# (and as $POSTDEPLOY_RELEASE), the commands it spells never run, and a
# tenant name that could escape a path is refused before anything is sent.
source "$(dirname "$0")/lib.sh"
pd_require_broker

cat >"$T/argv.sh" <<'SH'
#!/bin/sh
# argv.sh TENANT ARG...: one line per argument, then the release from the env.
out="$MARKERS/$1.argv"
shift
for a in "$@"; do printf 'arg:%s\n' "$a" >>"$out"; done
printf 'env:%s\n' "$POSTDEPLOY_RELEASE" >>"$out"
SH
chmod +x "$T/argv.sh"
pd_config <<INI
[action t.argv]
run = $T/argv.sh {tenant} --release={release} {release}
auto = true
INI

# Each would create a file in $T/pwned if a shell ever saw it.
HOSTILE="1.0; touch $T/pwned.semi \$(touch $T/pwned.subst) \`touch $T/pwned.tick\` | touch $T/pwned.pipe && touch $T/pwned.and > $T/pwned.redir \${HOME} * ~ 'q' \"dq\""

pd_reactor_start
pd_rc rc pd_cli deploy --auto --release "$HOSTILE" --tenant acme --wait --timeout 60s
pd_eq "the deploy with a hostile release exits 0" 0 "$rc"
printf 'arg:--release=%s\narg:%s\nenv:%s\n' "$HOSTILE" "$HOSTILE" "$HOSTILE" >"$T/want.argv"
pd_check "the action got the release as one literal word, twice, and in its env" \
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
