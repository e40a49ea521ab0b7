#!/usr/bin/env bash
# The multi-reactor tests are only as good as their checker and their
# marker action (lib_group.sh, group_check.py). Here both meet made-up
# evidence, no broker and no reactor: a clean history passes; a once-action
# run twice, two runs at once (the real mark.sh, run twice side by side), a
# result a zombie committed after its stop, a report that is not the
# marker's run, and a run that never finished each fail, and the output
# names the tenant, the action and the reactors.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_group.sh"
CHECK=$PD_SOURCE_DIR/tests/integration/group_check.py
pg_mark_script

# A clean history: acme's two once-actions, one run each, on r1 and r2.
S=1700000000000000000 # ns
ms() { echo $((($1 + S) / 1000000)); }
iso() { python3 -c 'import datetime, sys
print(datetime.datetime.fromtimestamp(int(sys.argv[1]) / 1000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z")' "$1"; }
clean() {
	rm -rf "$T/m" && mkdir -p "$T/m"
	printf 'acme x.a 1.0\nacme x.b 1.0\n' >"$T/expected"
	printf 'acme x.a r1 %s %s\nacme x.b r2 %s %s\n' $((S + 10000000)) $((S + 210000000)) \
		$((S + 300000000)) $((S + 500000000)) >"$T/m/runs"
	printf 'BEGIN acme x.a r1 %s 11\nBEGIN acme x.b r2 %s 12\n' $((S + 10000000)) \
		$((S + 300000000)) >"$T/m/begun"
	{
		echo "{\"partition\": 0, \"offset\": 0, \"timestamp_ms\": $(ms 220000000), \"type\": \"action.finished\", \"tenant\": \"acme\", \"action\": \"x.a\", \"status\": \"SUCCEEDED\", \"retrying\": false, \"reactor\": \"r1\", \"release\": \"1.0\"}"
		echo "{\"partition\": 0, \"offset\": 1, \"timestamp_ms\": $(ms 510000000), \"type\": \"action.finished\", \"tenant\": \"acme\", \"action\": \"x.b\", \"status\": \"SUCCEEDED\", \"retrying\": false, \"reactor\": \"r2\", \"release\": \"1.0\"}"
	} >"$T/committed.jsonl"
	cp "$T/committed.jsonl" "$T/uncommitted.jsonl"
	cat >"$T/report.json" <<JSON
[{"tenant": "acme", "action": "x.a", "state": "succeeded", "release": "1.0",
  "started_at": "$(iso "$(ms 5000000)")", "finished_at": "$(iso "$(ms 215000000)")"},
 {"tenant": "acme", "action": "x.b", "state": "succeeded", "release": "1.0",
  "started_at": "$(iso "$(ms 295000000)")", "finished_at": "$(iso "$(ms 505000000)")"}]
JSON
}
check() { # check [options]: its status; output in $T/check.out
	local rc=0
	python3 "$CHECK" check --markers "$T/m" --expected "$T/expected" \
		--committed "$T/committed.jsonl" --uncommitted "$T/uncommitted.jsonl" \
		--report "$T/report.json" "$@" >"$T/check.out" 2>&1 || rc=$?
	echo "$rc"
}
says() { grep -q -- "$1" "$T/check.out" || { cat "$T/check.out"; return 1; }; }

clean
pd_eq "a clean history passes" 0 "$(check)"

clean
echo "acme x.a r3 $((S + 900000000)) $((S + 1100000000))" >>"$T/m/runs"
pd_eq "a once-action run twice fails" 1 "$(check)"
pd_check "... and says where it ran" says "acme x.a: ran 2 times: r1 .*; r3 "

clean
echo "acme x.a r3 $((S + 100000000)) $((S + 300000000))" >>"$T/m/runs"
pd_eq "two runs whose times overlap fail" 1 "$(check)"
pd_check "... as overlapping" says "acme x.a: runs on r1 and r3 overlapped in time"

# The real marker action, twice at once for one (tenant, action): the
# second finds the lock held by the first, alive.
mkdir -p "$T/live"
MARKERS=$T/live PG_REACTOR=r1 "$T/mark.sh" acme x.a 1 &
first=$!
limit=$(($(date +%s) + 10))
until [ -f "$T/live/acme.x.a.lock/who" ]; do
	[ "$(date +%s)" -lt "$limit" ] || pd_die "the first run took no lock"
	sleep 0.05
done
MARKERS=$T/live PG_REACTOR=r2 "$T/mark.sh" acme x.a 0.1
wait "$first"
pd_eq "mark.sh: the second run of a held (tenant, action) records an overlap" \
	"OVERLAP acme x.a r2" "$(cut -d' ' -f1-4 "$T/live/overlap" 2>/dev/null)"
pd_eq "... naming the holder" r1 "$(awk '{ print $6 }' "$T/live/overlap" 2>/dev/null)"
pd_eq "mark.sh: both runs wrote their marker" 2 "$(pd_lines "$T/live/runs")"
pd_check "mark.sh: the lock is released" test ! -e "$T/live/acme.x.a.lock"
clean
cp "$T/live/overlap" "$T/m/overlap"
pd_eq "an overlap the marker action saw fails the check" 1 "$(check)"
pd_check "... naming both reactors" says "OVERLAP: acme x.a: a run on r2 began while r1 held the lock"

# A run stopped by SIGTERM (the supervisor's lease) leaves no marker and
# releases its lock.
MARKERS=$T/live PG_REACTOR=r1 "$T/mark.sh" globex x.a 30 &
victim=$!
until [ -f "$T/live/globex.x.a.lock/who" ]; do sleep 0.05; done
kill -TERM "$victim"
wait "$victim" || true
pd_eq "mark.sh: a run stopped by SIGTERM is noted as interrupted" "globex x.a r1" \
	"$(cut -d' ' -f1-3 "$T/live/interrupted" 2>/dev/null)"
pd_check "... and releases its lock" test ! -e "$T/live/globex.x.a.lock"

clean
echo "BEGIN acme x.a r2 $((S + 600000000)) 13" >>"$T/m/begun"
pd_eq "a run that began and never finished fails" 1 "$(check)"
pd_check "... naming its reactor" says "acme x.a: a run on r2 began and never finished"
pd_eq "... unless interrupted runs are allowed (the zombie's)" 0 "$(check --allow-interrupted)"

clean
echo "{\"partition\": 0, \"offset\": 2, \"timestamp_ms\": $(ms 2000000000), \"type\": \"action.started\", \"tenant\": \"acme\", \"action\": \"x.a\", \"reactor\": \"r1\"}" >>"$T/committed.jsonl"
pd_eq "a zombie's record committed after its stop fails" 1 "$(check --zombie r1 --since $((S + 1000000000)))"
pd_check "... naming it" says "acme x.a: r1 committed action.started 1.0 s after it was stopped"
pd_eq "... and one before its stop does not" 0 "$(check --zombie r1 --since $((S + 3000000000)))"

clean
echo "{\"partition\": 0, \"offset\": 2, \"timestamp_ms\": $(ms 990000000), \"type\": \"action.finished\", \"tenant\": \"acme\", \"action\": \"x.b\", \"status\": \"SUCCEEDED\", \"retrying\": false, \"reactor\": \"r1\", \"release\": \"1.0\"}" >>"$T/committed.jsonl"
pd_eq "two committed SUCCEEDED for one once-action fail" 1 "$(check)"
pd_check "... naming both reactors" says "acme x.b: 2 committed action.finished SUCCEEDED (want 1), from: r2, r1"

clean
sed -i 's/"r2", "release"/"r3", "release"/' "$T/committed.jsonl"
pd_eq "a committed result from another reactor than the marker's fails" 1 "$(check)"

clean
sed -i "s/$(iso "$(ms 295000000)")/$(iso "$(ms 400000000)")/" "$T/report.json"
pd_eq "a report whose run is not the marker's fails" 1 "$(check)"
pd_check "... and says so" says "acme x.b: the report's run"

clean
sed -i '2,$ s/"succeeded"/"failed"/' "$T/report.json"
pd_eq "a report that does not say succeeded fails" 1 "$(check)"
pd_done
