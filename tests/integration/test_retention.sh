#!/usr/bin/env bash
# Retention (reactor.keep_runs): history older than the window is pruned by
# the running reactor, but what "pending" is made of stays. A reactor runs
# an action twice; its history is then aged by 100 days in the state file;
# a reactor started again (keep_runs = 90d, the default) deletes the old
# run and both old event records, keeps the newest finished run, and still
# knows the action succeeded: --auto plans nothing.
source "$(dirname "$0")/lib.sh"
pd_require_broker
pd_action_script
pd_config <<INI
[action t.once]
run = $T/act.sh t.once {tenant} 0
auto = true
policy = once
[action t.always]
run = $T/act.sh t.always {tenant} 0
auto = true
policy = always
INI
db=$T/state/state.db
q() { sqlite3 "$db" "$1"; }

pd_reactor_start
pd_rc rc pd_cli deploy --auto --release 1 --tenant acme --wait --timeout 60s
pd_eq "first deploy" 0 "$rc"
pd_rc rc pd_cli deploy --auto --release 2 --tenant acme --wait --timeout 60s
pd_eq "second deploy" 0 "$rc"
pd_reactor_stop
pd_eq "runs before: t.once once, t.always twice" 3 "$(q 'SELECT count(*) FROM runs')"
pd_eq "events before" 2 "$(q 'SELECT count(*) FROM events')"

# 100 days ago, all of it.
day=86400000
q "UPDATE runs SET started_at = started_at - 100 * $day,
   finished_at = finished_at - 100 * $day;
   UPDATE events SET done_at = done_at - 100 * $day;"
newest=$(q "SELECT max(id) FROM runs WHERE action = 't.always'")

pd_reactor_start
# The committer prunes at its first tick; wait for it (bounded).
for ((i = 0; i < 200; i++)); do
	[ "$(q 'SELECT count(*) FROM events')" = 0 ] && break
	sleep 0.1
done
pd_eq "old event records are pruned" 0 "$(q 'SELECT count(*) FROM events')"
pd_eq "each action keeps its newest finished run" \
	"t.always $newest|t.once" \
	"$(q "SELECT group_concat(action || CASE action WHEN 't.always' THEN ' ' || id ELSE '' END, '|')
	      FROM (SELECT * FROM runs ORDER BY action)")"
pd_rc rc pd_cli deploy --auto --release 3 --tenant acme --wait --timeout 60s
pd_eq "third deploy" 0 "$rc"
pd_check "t.once is still done: only t.always is planned" grep -q "1 action(s) to run" "$T/out"
pd_eq "t.once ran once in all" 1 "$(pd_lines "$T/markers/acme.t.once")"
pd_eq "t.always ran each time" 3 "$(pd_lines "$T/markers/acme.t.always")"
pd_reactor_stop
pd_eq "integrity after pruning" ok "$(q 'PRAGMA integrity_check')"
pd_done
