#!/usr/bin/env bash
# A failing rd_kafka_offsets_store is worth a warning, since those events
# stay uncommitted and come again after a restart, but once per kind of
# error rather than once per event. Provoked through the [kafka]
# pass-through: with enable.auto.offset.store = true librdkafka refuses
# every explicit store ("Local: Invalid argument or configuration").
source "$(dirname "$0")/lib.sh"
pd_require_broker
pd_action_script
pd_config <<INI
[action t.ok]
run = $T/act.sh ok {tenant} 0
auto = true
policy = always
INI
sed -i "s|^\[kafka\]|[kafka]\nenable.auto.offset.store = true|" "$T/postdeploy.ini"
pd_reactor_start
for release in 1 2 3; do
	pd_rc rc pd_cli deploy --auto --release "$release" --tenant acme --wait --timeout 60s
	pd_eq "deploy $release succeeds" 0 "$rc"
done
pd_reactor_stop
pd_eq "three events ran" 3 "$(pd_lines "$T/markers/acme.ok")"
pd_eq "the failing offsets_store is a warning, said once for three events" 1 \
	"$(grep -c 'WARN.*offsets_store: .*Invalid argument' "$T/reactor.log" || true)"
pd_done
