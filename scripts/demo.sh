#!/usr/bin/env bash
# scripts/demo.sh — THE main job, on a fresh machine, with no Kafka needed:
# installs what is missing, builds, starts `postdeploy-reactor --dev` (an
# embedded Kafka-protocol broker) with examples/postdeploy.ini, runs
# `postdeploy deploy --auto --wait` for the example's two tenants, prints the
# report, runs the manual action with --one, and stops the reactor.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

bash scripts/setup.sh
mkdir -p build
cmake -S . -B build >build/demo-cmake.log 2>&1 || { tail -n 40 build/demo-cmake.log; exit 1; }
cmake --build build -j2 --target postdeploy postdeploy-reactor postdeploy_example_plugin \
	>build/demo-build.log 2>&1 ||
	{ tail -n 60 build/demo-build.log; exit 1; }
PD=build/postdeploy
CONF=examples/postdeploy.ini

fifo=$(mktemp -u)
mkfifo "$fifo"
# The example plugin adds two C actions (example.count_orders, auto; and
# example.close_books, manual) next to the config's command actions.
build/postdeploy-reactor --dev -c "$CONF" -s reactor.plugins=build/libpostdeploy_example_plugin.so \
	>"$fifo" 2>build/demo-reactor.log &
reactor=$!
trap 'kill -TERM $reactor 2>/dev/null; wait $reactor 2>/dev/null; rm -f "$fifo"' EXIT
# The reactor prints one line once its broker is up and its address written.
if ! read -r -t 60 ready <"$fifo"; then
	echo "the reactor did not start; its log:" >&2
	tail -n 30 build/demo-reactor.log >&2
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
echo "The reactor's log is in build/demo-reactor.log."
