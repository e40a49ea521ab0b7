#!/usr/bin/env bash
# docs/CONFIG.md and README.md's key table must be what scripts/gen-docs.sh
# makes from the binary's key table: a key added to the parser without
# regenerating fails here.
set -euo pipefail
want=$(mktemp)
trap 'rm -f "$want"' EXIT
"$PD_BUILD_DIR/postdeploy-reactor" --help-config-md >"$want"
fails=0
if ! tail -n +7 "$PD_SOURCE_DIR/docs/CONFIG.md" | diff -u - "$want"; then
	echo "docs/CONFIG.md is stale: run scripts/gen-docs.sh"; fails=$((fails + 1))
fi
if ! sed -n '/<!-- config-keys:begin -->/,/<!-- config-keys:end -->/p' "$PD_SOURCE_DIR/README.md" |
	sed '1d;$d' | diff -u - "$want"; then
	echo "README.md's key table is stale: run scripts/gen-docs.sh"; fails=$((fails + 1))
fi
echo "$((2 - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
