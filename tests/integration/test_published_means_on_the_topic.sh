#!/usr/bin/env bash
# `published EVENT ID for tenant T` is a promise to CI logs that the event
# is on the topic. It is printed when the broker acknowledges the event,
# not when it is queued: here the broker refuses every event (the events
# topic takes at most 64 bytes a batch), and the CLI must say it failed and
# print no "published" line. With the line printed at queueing, the log
# read "published ..." for events that never reached Kafka.
source "$(dirname "$0")/lib.sh"
pd_require_broker
PY=${PD_PYTHON:-$(bash "$PD_SOURCE_DIR/tests/interop/venv.sh")}
[ -x "$PY" ] || pd_die "no Python venv with confluent-kafka ($PY)"
pd_config </dev/null
EVENTS=pdtest.$RUN_ID.events

# The events topic, made before the CLI would make it, refusing anything
# bigger than 64 bytes (an event is several hundred).
# The results and dead-letter topics are made beside it (the CLI makes none
# when one of them is there already).
"$PY" - "$PD_BROKERS" "$EVENTS" "pdtest.$RUN_ID.results" "pdtest.$RUN_ID.dlq" \
  <<'PY' || pd_die "cannot create the topics"
import sys
from confluent_kafka.admin import AdminClient, NewTopic
admin = AdminClient({"bootstrap.servers": sys.argv[1]})
fut = admin.create_topics([
    NewTopic(sys.argv[2], 3, 1, config={"max.message.bytes": "64"}),
    NewTopic(sys.argv[3], 3, 1, config={"cleanup.policy": "compact"}),
    NewTopic(sys.argv[4], 3, 1)])
for f in fut.values():
    f.result(30)
PY

rc=0
pd_cli deploy --auto --release 1.0 --tenant acme --tenant globex \
  >"$T/out" 2>"$T/err" || rc=$?
pd_eq "a refused publish exits 4 (Kafka)" 4 "$rc"
pd_check "it says the broker refused it" grep -q "publish to $EVENTS failed: .*too large" "$T/err"
pd_eq "no 'published' line for an event the broker refused" 0 \
  "$(grep -c '^published' "$T/out" || true)"

# The same command against a topic that takes events prints one line per
# tenant, each naming an event that is on the topic.
# (Topics of their own, which the CLI makes.)
EVENTS_OK=pdtest.$RUN_ID.ok.events
sed -i "s/^events = .*/events = $EVENTS_OK/; s/^results = .*/results = pdtest.$RUN_ID.ok.results/; s/^dlq = .*/dlq = pdtest.$RUN_ID.ok.dlq/" "$T/postdeploy.ini"
rc=0
pd_cli deploy --auto --release 1.1 --tenant acme --tenant globex >"$T/out2" || rc=$?
pd_eq "a publish the broker takes exits 0" 0 "$rc"
pd_eq "one 'published' line per tenant" 2 "$(grep -c '^published release.deployed ' "$T/out2")"
for id in $(awk '/^published/ {print $3}' "$T/out2"); do
  pd_check "event $id is on the topic" sh -c \
    "kcat -C -b '$PD_BROKERS' -t '$EVENTS_OK' -o beginning -e -q -f '%h\n' | grep -q 'ce_id=$id'"
done
pd_done
