#!/usr/bin/env bash
# `--version` of both programs names postdeploy's version and the libraries
# in use, so a bug report carries them: librdkafka and SQLite as loaded at
# run time, libavro-c as built against (it has no run-time version call).
# Needs no Kafka.
source "$(dirname "$0")/lib.sh"
rdkafka=$(pkg-config --modversion rdkafka)
sqlite=$(pkg-config --modversion sqlite3)
avro=$(pkg-config --modversion avro-c)
for prog in postdeploy postdeploy-reactor; do
	pd_rc rc "$PD_BIN/$prog" --version
	pd_eq "$prog --version: exit 0" 0 "$rc"
	pd_eq "$prog --version: two lines" 2 "$(wc -l <"$T/out" | tr -d ' ')"
	pd_check "$prog --version: the first line is the program and its version" \
		grep -qxE "$prog [0-9]+\.[0-9]+\.[0-9]+" <(head -n 1 "$T/out")
	pd_eq "$prog --version: the second line names the libraries" \
		"librdkafka $rdkafka, SQLite $sqlite, libavro-c $avro (built against; it has no run-time version call)" \
		"$(sed -n 2p "$T/out")"
done
pd_done
