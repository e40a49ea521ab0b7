#!/usr/bin/env bash
# docs/CONFIG.md must be what scripts/gen-docs.sh makes from the binary's
# key table: a key added to the parser without regenerating fails here.
set -euo pipefail
want=$(mktemp)
trap 'rm -f "$want"' EXIT
"$PD_BUILD_DIR/postdeploy-reactor" --help-config-md >"$want"
if tail -n +7 "$PD_SOURCE_DIR/docs/CONFIG.md" | diff -u - "$want"; then
	echo "1 passed, 0 failed"
else
	echo "docs/CONFIG.md is stale: run scripts/gen-docs.sh"
	echo "0 passed, 1 failed"
	exit 1
fi
