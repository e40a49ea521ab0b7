#!/bin/bash
# test_restore_broker.sh - what a restore (consumer/restore.c) must not
# apply, on the real broker: librdkafka 2.0.2's mock cluster writes no
# transaction markers, so unit.test_restore's aborted and open transaction
# case skips there when no broker answers. Here it must run: a missing
# broker fails it.
. "$(dirname "$0")/lib.sh"
pd_require_broker

pd_check "an aborted or open transaction's records are not restored" \
	env PD_BROKERS="$PD_BROKERS" PD_TEST_NEED_BROKER=1 \
	"$PD_BIN/tests/test_restore"
pd_done
