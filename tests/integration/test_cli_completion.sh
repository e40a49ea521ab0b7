#!/usr/bin/env bash
# Bash completion (scripts/postdeploy.bash-completion): commands, a
# command's options, action names from the reactors' registry when a broker
# answers, nothing (and no hang) when none does; `cmake --install` puts it
# where bash-completion looks.
source "$(dirname "$0")/lib.sh"
pd_require_broker
pd_action_script
pd_config <<INI
[action t.backfill]
run = $T/act.sh backfill {tenant} 0
auto = true
[action t.reindex]
run = $T/act.sh reindex {tenant} 0
auto = false
INI
export PATH=$PD_BIN:$PATH
# shellcheck source=/dev/null
source "$PD_SOURCE_DIR/scripts/postdeploy.bash-completion"

complete_line() { # complete_line WORD...: COMPREPLY for the last word, sorted
	COMP_WORDS=("$@")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMPREPLY=()
	_postdeploy
	printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ' | sed 's/ $//'
}

pd_eq "postdeploy de<TAB>" "deploy" "$(complete_line postdeploy de)"
pd_eq "postdeploy <TAB>: every command" "actions cancel deploy help pause report reset resume serve skip" \
	"$(complete_line postdeploy '')"
pd_eq "postdeploy help re<TAB>" "report reset resume" "$(complete_line postdeploy help re)"
pd_eq "postdeploy deploy --te<TAB>" "--tenant --tenants-file" \
	"$(complete_line postdeploy deploy --te)"
pd_eq "postdeploy skip --all<TAB>: skip's options only" "--all-pending --all-tenants" \
	"$(complete_line postdeploy skip --all)"
pd_eq "postdeploy actions --format <TAB>" "json names table" \
	"$(complete_line postdeploy actions --format '')"
pd_eq "postdeploy deploy --dr<TAB>" "--dry-run" "$(complete_line postdeploy deploy --dr)"
pd_eq "postdeploy deploy --dry-run --format <TAB>: the plan's formats" "json text" \
	"$(complete_line postdeploy deploy --dry-run --format '')"

pd_reactor_start
pd_rc rc pd_cli deploy --auto --release 1 --tenant acme --wait --timeout 60s
pd_eq "a deploy --wait (the reactor is up, its registry out) exits 0" 0 "$rc"
pd_eq "postdeploy deploy -c FILE --one t.<TAB>: the registry's names" "t.backfill t.reindex" \
	"$(complete_line postdeploy deploy -c "$T/postdeploy.ini" --one t.)"
pd_eq "postdeploy reset -c FILE t.r<TAB>" "t.reindex" \
	"$(complete_line postdeploy reset -c "$T/postdeploy.ini" t.r)"
rc=0; pd_reactor_stop || rc=$?
pd_eq "the reactor stops cleanly" 0 "$rc"

start=$(date +%s%N)
out=$(complete_line postdeploy skip -b 127.0.0.1:9 t.)
ms=$(( ($(date +%s%N) - start) / 1000000 ))
pd_eq "no broker: no names" "" "$out"
pd_check "and no hang (${ms} ms < 5000)" test "$ms" -lt 5000

cmake --install "$PD_BUILD_DIR" --prefix "$T/inst" >/dev/null
pd_check "cmake --install puts it in share/bash-completion/completions/postdeploy" \
	cmp -s "$PD_SOURCE_DIR/scripts/postdeploy.bash-completion" \
	"$T/inst/share/bash-completion/completions/postdeploy"
pd_done
