#!/usr/bin/env bash
# A big --tenants-file is handled in linear time: a million lines with a bad
# one near the end are refused in seconds, naming that line, before
# anything is published; 150,000 tenants, each listed twice, are published
# once each, past librdkafka's 100,000 queued messages.
source "$(dirname "$0")/lib.sh"
pd_require_broker
pd_config </dev/null

# A scan per line (quadratic) took hours here; a minute is far above what
# the linear read needs (about a second) and far below that.
seq -f 'tenant-%07.0f' 1 1000000 | sed '999990s/.*/tenant bad/' >"$T/million.txt"
pd_rc rc timeout 60 "$PD_BIN/postdeploy" deploy --auto --release 1.0 \
	--tenants-file "$T/million.txt" -c "$T/postdeploy.ini"
pd_eq "a bad line in a million refuses the file (not a timeout)" 2 "$rc"
pd_check "naming the file, the line and the name" \
	grep -qF "$T/million.txt:999990: 'tenant bad' is not a valid tenant name" "$T/out"
pd_check "nothing is published" bash -c "! grep -q '^published' '$T/out'"

N=150000
seq -f 'tenant-%07.0f' 1 "$N" >"$T/twice.txt"
seq -f 'tenant-%07.0f' 1 "$N" >>"$T/twice.txt"
pd_rc rc timeout 120 "$PD_BIN/postdeploy" deploy --auto --release 1.0 \
	--tenants-file "$T/twice.txt" -c "$T/postdeploy.ini"
pd_eq "$N tenants, each listed twice, are published" 0 "$rc"
pd_eq "one event per tenant, said once each" "$N" "$(grep -c '^published' "$T/out")"
# The events topic holds them all: the sum of its partitions' end offsets.
TOPIC=pdtest.$RUN_ID.events
pd_eq "the events topic has $N records" "$N" "$(kcat -b "$PD_BROKERS" -Q \
	-t "$TOPIC:0:-1" -t "$TOPIC:1:-1" -t "$TOPIC:2:-1" |
	awk '{ s += $NF } END { print s }')"
pd_done
