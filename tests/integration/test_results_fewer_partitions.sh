#!/usr/bin/env bash
# One reactor per group (shared_group = false) with a results topic of
# fewer partitions than the events topic, as older set-ups may have: a
# result sent to its event's partition number, which the results topic
# lacks, goes where its key says instead (co-partitioning is only
# required of a shared group), and every deploy still finishes.
# `report --tenant T` cannot then know that T's results are on its events'
# partition number: it reads them all.
source "$(dirname "$0")/lib.sh"
pd_require_broker
pd_action_script
pd_config <<INI
[action t.a]
run = $T/act.sh a {tenant} 0
auto = true
INI
# The results topic first, with 2 partitions; the events topic gets 3.
sed -e "s|^events = .*|events = pdtest.$RUN_ID.other-events|" \
	-e "s|^partitions = .*|partitions = 2|" "$T/postdeploy.ini" >"$T/one.ini"
"$PD_BIN/postdeploy" deploy --one t.a --no-check --release 0 --tenant x \
	-c "$T/one.ini" >/dev/null
pd_reactor_start

tenants=()
for i in $(seq 1 12); do tenants+=(--tenant "t$i"); done
pd_rc rc pd_cli deploy --auto --release 1.0 "${tenants[@]}" --wait --timeout 60s
pd_eq "every deploy finished well" 0 "$rc"
pd_eq "events on partition 2, which the results topic lacks, were among them" yes \
	"$(kcat -C -b "$PD_BROKERS" -t "pdtest.$RUN_ID.events" -o beginning -e -q \
		-f '%p\n' 2>/dev/null | grep -q '^2$' && echo yes || echo no)"
pd_reactor_stop
pd_report
same=0 all=0
for i in $(seq 1 12); do
	pd_cli report -v --tenant "t$i" --format json >"$T/one.json" 2>"$T/one.err" || true
	grep -q 'every partition read in full' "$T/one.err" && all=$((all + 1))
	[ "$(python3 -c 'import json, sys; print(sorted(json.dumps(r, sort_keys=True) for r in json.load(open(sys.argv[1])) if r["tenant"] == sys.argv[2]))' "$T/report.json" "t$i")" = \
		"$(python3 -c 'import json, sys; print(sorted(json.dumps(r, sort_keys=True) for r in json.load(open(sys.argv[1]))))' "$T/one.json")" ] &&
		same=$((same + 1))
done
pd_eq "report --tenant read every partition in full, for each tenant" 12 "$all"
pd_eq "report --tenant has each tenant's rows of the full report" 12 "$same"
pd_eq "no record refused or failed" "" \
	"$(grep 'cannot produce\|delivery to .* failed' "$T/reactor.log" || true)"
pd_done
