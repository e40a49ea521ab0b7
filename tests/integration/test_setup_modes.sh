#!/usr/bin/env bash
# The demo installs only what building and running needs; CI and
# scripts/test.sh still install everything. Checked on setup.sh's own lists
# (--list installs nothing) and on the CMake configuration the demo uses,
# which must not ask for a test tool. Needs no Kafka.
source "$(dirname "$0")/lib.sh"
S=$PD_SOURCE_DIR/scripts
bash "$S/setup.sh" --demo --list >"$T/demo.list"
bash "$S/setup.sh" --list >"$T/full.list"
for p in build-essential cmake pkg-config librdkafka-dev libavro-dev libsqlite3-dev libjansson-dev libssl-dev; do
	pd_check "the demo installs $p" grep -qx "$p" "$T/demo.list"
done
for p in clang libclang-rt-14-dev valgrind default-jre-headless maven python3-venv libcmocka-dev kcat yamllint shellcheck; do
	pd_check "the demo does not install $p" bash -c "! grep -qx '$p' '$T/demo.list'"
	pd_check "scripts/test.sh (CI) installs $p" grep -qx "$p" "$T/full.list"
done
pd_check "demo.sh asks setup.sh for the demo set" grep -qE '^bash scripts/setup.sh --demo$' "$S/demo.sh"
pd_check "test.sh asks setup.sh for everything" grep -qE '^ +bash scripts/setup.sh \|\|' "$S/test.sh"
pd_rc rc bash "$S/setup.sh" --everything
pd_eq "an unknown option is a usage error" 2 "$rc"

# The demo's own build folder, configured with the demo's flags, needs
# neither cmocka nor valgrind.
flags=$(grep -oE -- '-DPD_[A-Z]+=[A-Z]+' "$S/demo.sh" | tr '\n' ' ' || true)
pd_check "demo.sh turns the tests and benchmarks off" test "$flags" = "-DPD_TESTS=OFF -DPD_BENCH=OFF "
# shellcheck disable=SC2086
pd_rc rc cmake -S "$PD_SOURCE_DIR" -B "$T/b" $flags
pd_eq "the demo's configuration succeeds" 0 "$rc"
pd_check "and looks for no test tool (cmocka, valgrind)" \
	bash -c "! grep -qE '^(CMOCKA|VALGRIND)' '$T/b/CMakeCache.txt'"
pd_done
