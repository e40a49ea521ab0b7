#!/usr/bin/env bash
# The reactor's /metrics ([reactor] http): after a deploy its counters say
# what ran (by action and status), a poison record is counted by its class
# of reason, the output passes `promtool check metrics`, and a real
# Prometheus scrapes it and answers a query on postdeploy_actions_total. An
# address that is taken stops the start with exit 2, naming the address.
source "$(dirname "$0")/lib.sh"
pd_require_broker
for tool in curl promtool prometheus python3; do
	command -v "$tool" >/dev/null || pd_die "$tool is not installed (run scripts/setup.sh)"
done

# A port nobody listens on (the kernel picks it).
pd_free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
PORT=$(pd_free_port)
URL=http://127.0.0.1:$PORT

# pd_metric 'NAME{LABELS}': its value in the last scrape ($T/metrics.txt),
# "-" if the series is not there.
pd_metric() {
	awk -v s="$1" '$1 == s { v = $2 } END { print (v == "" ? "-" : v) }' "$T/metrics.txt"
}
pd_scrape() { curl -fsS "$URL/metrics" >"$T/metrics.txt"; }
# pd_await_metric SERIES VALUE: scrapes until the series has the value
# (results are recorded after `--wait` saw them; a reactor starts), for at
# most 30 s.
pd_await_metric() {
	local end=$((SECONDS + 30))
	# A scrape that fails (a reactor still starting) is tried again.
	until { pd_scrape && [ "$(pd_metric "$1")" = "$2" ]; } || [ $SECONDS -ge $end ]; do
		sleep 0.2
	done
}
# pd_await_http PATH CODE: polls until PATH answers CODE, for at most 60 s.
pd_await_http() {
	local end=$((SECONDS + 60)) code
	while :; do
		code=$(curl -s -o "$T/body" -w '%{http_code}' "$URL$1" || true)
		[ "$code" = "$2" ] || [ $SECONDS -ge $end ] && break
		sleep 0.2
	done
	echo "$code"
}

pd_action_script
pd_config <<INI
[action t.ok]
run = $T/act.sh ok {tenant} 0
auto = true
[action t.bad]
run = $T/act.sh bad {tenant} 3
auto = true
INI
sed -i "s|^\[reactor\]|[reactor]\nhttp = 127.0.0.1:$PORT|" "$T/postdeploy.ini"
pd_reactor_start
pd_eq "the reactor gets ready (/readyz 200)" 200 "$(pd_await_http /readyz 200)"

pd_rc rc pd_cli deploy --auto --release 1 --tenant acme --wait --timeout 60s
pd_eq "the deploy ran, one action failed" 1 "$rc"
pd_await_metric 'postdeploy_events_total{outcome="processed"}' 1
pd_eq "one event processed" 1 "$(pd_metric 'postdeploy_events_total{outcome="processed"}')"
pd_eq "t.ok counted succeeded once" 1 "$(pd_metric 'postdeploy_actions_total{action="t.ok",status="succeeded"}')"
pd_eq "t.bad counted failed once" 1 "$(pd_metric 'postdeploy_actions_total{action="t.bad",status="failed"}')"
pd_eq "t.ok never counted failed" - "$(pd_metric 'postdeploy_actions_total{action="t.ok",status="failed"}')"
pd_eq "t.ok's duration histogram has one observation" 1 "$(pd_metric 'postdeploy_action_duration_seconds_count{action="t.ok"}')"
pd_eq "... in its +Inf bucket" 1 "$(pd_metric 'postdeploy_action_duration_seconds_bucket{action="t.ok",le="+Inf"}')"
pd_eq "nothing runs now" 0 "$(pd_metric postdeploy_actions_running)"
pd_eq "nothing dead-lettered yet" 0 "$(pd_metric 'postdeploy_events_total{outcome="dead_lettered"}')"
pd_check "store commits were timed" test "$(pd_metric postdeploy_state_commit_seconds_count)" -gt 0
pd_check "the consumer joined once at least" test "$(pd_metric postdeploy_consumer_rebalances_total)" -ge 1
pd_check "consumer lag is reported" test "$(pd_metric postdeploy_consumer_lag_records)" != -

# A record that is not an event: counted by class, not by its free text.
printf 'not avro' | kcat -P -b "$PD_BROKERS" -t "pdtest.$RUN_ID.events" -k acme \
	-H ce_type=release.deployed -H ce_id=poison-1 -H ce_source=test -H ce_specversion=1.0
pd_await_metric 'postdeploy_dead_letters_total{reason="invalid_event"}' 1
pd_eq "the poison record is counted as invalid_event" 1 "$(pd_metric 'postdeploy_dead_letters_total{reason="invalid_event"}')"
pd_eq "... and as a dead-lettered event" 1 "$(pd_metric 'postdeploy_events_total{outcome="dead_lettered"}')"
pd_eq "no other reason counted" 0 "$(pd_metric 'postdeploy_dead_letters_total{reason="signature"}')"

pd_check "the response is Prometheus text format 0.0.4" \
	grep -qi '^content-type: text/plain; version=0.0.4' <(curl -sSI "$URL/metrics")
pd_rc rc promtool check metrics <"$T/metrics.txt"
pd_eq "promtool check metrics finds nothing wrong" 0 "$rc"
[ "$rc" = 0 ] || cat "$T/out"

# A real Prometheus scrapes the reactor and answers a query.
PPORT=$(pd_free_port)
cat >"$T/prometheus.yml" <<YML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: postdeploy
    static_configs:
      - targets: ['127.0.0.1:$PORT']
YML
prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/prom" \
	--web.listen-address="127.0.0.1:$PPORT" >"$T/prometheus.log" 2>&1 &
PROM_PID=$!
trap 'kill "$PROM_PID" 2>/dev/null || true; pd_cleanup' EXIT
# pd_prom_query PROMQL: the first result's value ("-" if none yet).
pd_prom_query() {
	curl -fsS "http://127.0.0.1:$PPORT/api/v1/query" --data-urlencode "query=$1" 2>/dev/null |
		python3 -c 'import json, sys; r = json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "-")' 2>/dev/null || echo -
}
end=$((SECONDS + 60)); health=-
while [ $SECONDS -lt $end ]; do
	health=$(curl -fsS "http://127.0.0.1:$PPORT/api/v1/targets" 2>/dev/null |
		python3 -c 'import json, sys; t = json.load(sys.stdin)["data"]["activeTargets"]; print(t[0]["health"] if t else "-")' 2>/dev/null || echo -)
	[ "$health" = up ] && [ "$(pd_prom_query 'postdeploy_actions_total')" != - ] && break
	sleep 0.5
done
pd_eq "Prometheus scrapes the reactor (target up)" up "$health"
pd_eq "Prometheus answers postdeploy_actions_total for t.ok" 1 \
	"$(pd_prom_query 'postdeploy_actions_total{action="t.ok",status="succeeded"}')"
pd_eq "... and for t.bad" 1 \
	"$(pd_prom_query 'postdeploy_actions_total{action="t.bad",status="failed"}')"
kill "$PROM_PID"; wait "$PROM_PID" 2>/dev/null || true

# The same address again: a second reactor must not start without it.
rc=0
"$PD_BIN/postdeploy-reactor" -c "$T/postdeploy.ini" >"$T/second.out" 2>&1 || rc=$?
pd_eq "a second reactor on the taken address exits 2" 2 "$rc"
pd_check "its message names the address" grep -q "127.0.0.1:$PORT" "$T/second.out"
pd_check "... and says why" grep -qi "address already in use" "$T/second.out"
kill -0 "$PD_REACTOR_PID"
pd_eq "the first reactor still runs" 0 "$?"

rc=0; pd_reactor_stop || rc=$?
pd_eq "the reactor stops cleanly" 0 "$rc"

# The same event again: a new group reads the topic from the start with the
# same state, so the deploy is redelivered and runs nothing.
sed -i "s|^group.id = .*|group.id = pdtest-$RUN_ID-again|" "$T/postdeploy.ini"
pd_reactor_start
pd_await_metric 'postdeploy_events_total{outcome="duplicate"}' 1
pd_eq "a redelivered event is counted as a duplicate" 1 "$(pd_metric 'postdeploy_events_total{outcome="duplicate"}')"
pd_eq "... not as processed" 0 "$(pd_metric 'postdeploy_events_total{outcome="processed"}')"
pd_eq "... and nothing ran again" 1 "$(pd_lines "$T/markers/acme.ok")"
rc=0; pd_reactor_stop || rc=$?
pd_eq "the reactor stops cleanly again" 0 "$rc"
pd_done
