#!/usr/bin/env bash
# `report --tenant T` reads only T's results (a look at each record's key,
# "tenant/action", before anything else): T's rows are those a full report
# has for T, tenants whose names start like T's are left out, and the
# registry (keyed otherwise) still gives T's actions that never ran. The
# records are today's reactor's (co-partitioned, marked): only T's partition,
# partition 0 (the registry) and those of the pause records placed by key
# are read to their end, the others to their first record (test_report_one_tenant_reads_old_results_everywhere.sh has
# the older records).
source "$(dirname "$0")/lib.sh"
pd_require_broker
pd_config <<INI
[action t.ok]
run = /bin/true
auto = true
[action t.bad]
run = /bin/false
auto = true
[action t.m]
run = /bin/true
auto = false
INI
pd_reactor_start
# globex's events (and results) go to the partition none of the others
# use: every partition has records.
pd_rc rc pd_cli deploy --auto --release 1 --tenant acme --tenant acme-b \
	--tenant acm --tenant globex --wait --timeout 60s
pd_eq "four tenants deployed (t.bad fails each)" 1 "$rc"
pd_report
cp "$T/report.json" "$T/all.json"
# acm: its partition (2) and 0 (the registry, and where "~pause" and
# "acm/~pause" go by their key) read in full; globex's (1) to its first
# record.
pd_cli report -v --tenant acm --format json >"$T/acm.json" 2>"$T/one.err"
pd_eq "the other partition read to its first marked record, not all" "1 0" \
	"$(grep -c 'up to their first marked record' "$T/one.err") $(grep -c 'reading them all\|every partition read in full' "$T/one.err")"
pd_eq "the other one stopped at its first record (@0)" "1 1" \
	"$(grep -o 'the other [0-9]' "$T/one.err" | grep -o '[0-9]') $(grep -c 'read to its first marked record (@0)' "$T/one.err")"
pd_eq "acm's 3 rows" "acm acm acm" \
	"$(python3 -c 'import json, sys; print(" ".join(r["tenant"] for r in json.load(open(sys.argv[1]))))' "$T/acm.json")"
pd_cli report --tenant acme --format json >"$T/report.json"
pd_eq "only acme's rows" "acme acme acme" \
	"$(python3 -c 'import json, sys; print(" ".join(r["tenant"] for r in json.load(open(sys.argv[1]))))' "$T/report.json")"
pd_eq "t.ok succeeded" succeeded "$(pd_state acme t.ok state)"
pd_eq "t.bad failed" failed "$(pd_state acme t.bad state)"
pd_eq "t.m, known from the registry only, is pending" pending "$(pd_state acme t.m state)"
pd_eq "the same rows as the full report has for acme" \
	"$(python3 -c 'import json, sys; print([r for r in json.load(open(sys.argv[1])) if r["tenant"] == "acme"])' "$T/all.json")" \
	"$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1])))' "$T/report.json")"
pd_cli report --tenant acme-b --tenant acm --format json >"$T/report.json"
pd_eq "two tenants named: both, 3 rows each" "acm:3 acme-b:3" \
	"$(python3 -c 'import json, sys, collections; c = collections.Counter(r["tenant"] for r in json.load(open(sys.argv[1]))); print(" ".join("%s:%d" % kv for kv in sorted(c.items())))' "$T/report.json")"
pd_reactor_stop
pd_done
