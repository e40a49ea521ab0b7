#!/usr/bin/env bash
# scripts/demo.sh — THE main job, on a fresh machine, with no Kafka needed:
# installs what is missing, builds, starts `postdeploy-reactor --dev` (an
# embedded Kafka-protocol broker) with examples/postdeploy.ini, runs
# `postdeploy deploy --auto --wait` for the example's two tenants, prints the
# report, runs the manual action with --one, and stops the reactor.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# Only what building and running needs: no test tools, fuzzing toolchain,
# Java or Python. Its own build folder, configured without the tests and
# benchmarks (which would ask for cmocka and valgrind), so build/ keeps the
# configuration scripts/test.sh gives it.
bash scripts/setup.sh --demo
B=build-demo
mkdir -p $B
cmake -S . -B $B -DPD_TESTS=OFF -DPD_BENCH=OFF >$B/demo-cmake.log 2>&1 ||
	{ tail -n 40 $B/demo-cmake.log; exit 1; }
cmake --build $B -j2 --target postdeploy postdeploy-reactor postdeploy_example_plugin \
	>$B/demo-build.log 2>&1 ||
	{ tail -n 60 $B/demo-build.log; exit 1; }
PD=$B/postdeploy
CONF=examples/postdeploy.ini

fifo=$(mktemp -u)
mkfifo "$fifo"
# The example plugin adds two C actions (example.count_orders, auto; and
# example.close_books, manual) next to the config's command actions.
$B/postdeploy-reactor --dev -c "$CONF" -s reactor.plugins=$B/libpostdeploy_example_plugin.so \
	>"$fifo" 2>$B/demo-reactor.log &
reactor=$!
trap 'kill -TERM $reactor 2>/dev/null; wait $reactor 2>/dev/null; rm -f "$fifo"' EXIT
# The reactor prints one line once its broker is up and its address written.
if ! read -r -t 60 ready <"$fifo"; then
	echo "the reactor did not start; its log:" >&2
	tail -n 30 $B/demo-reactor.log >&2
	exit 1
fi
echo "$ready"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

step postdeploy deploy --auto --release 1.0.0 --all-tenants --wait -c $CONF
rc=0; "$PD" deploy --auto --release 1.0.0 --all-tenants --wait --timeout 2m -c "$CONF" || rc=$?
echo "(exit status $rc: 1 means an action failed, which the example does on purpose)"
[ "$rc" -le 1 ] || exit "$rc"

step postdeploy report -c $CONF
"$PD" report -c "$CONF"

step postdeploy actions -c $CONF
"$PD" actions -c "$CONF"

step postdeploy deploy --one core.fix_legacy_accounts --tenant acme --release 1.0.0 --wait -c $CONF
"$PD" deploy --one core.fix_legacy_accounts --tenant acme --release 1.0.0 --wait --timeout 1m -c "$CONF"

step postdeploy report --tenant acme --format json -c $CONF
"$PD" report --tenant acme --format json -c "$CONF"
echo
echo "The reactor's log is in $B/demo-reactor.log."
