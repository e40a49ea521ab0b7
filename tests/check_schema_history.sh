#!/usr/bin/env bash
# Released schemas are append-only: a record written with one may sit on a
# topic for ever, so no commit may modify, delete or rename a file under
# schemas/history/, and neither may the working tree. (test_history checks
# that every file there is in the table with the fingerprint it had; this
# checks what the table alone cannot see: a file and its row removed
# together, or a file edited in a way its fingerprint does not show, such
# as its docs.) Exits 77 (skipped) outside a git checkout.
set -euo pipefail
: "${PD_SOURCE_DIR:=$(cd "$(dirname "$0")/.." && pwd)}"
cd "$PD_SOURCE_DIR"
if ! git rev-parse --git-dir >/dev/null 2>&1; then
	echo "not a git checkout: cannot see the history of schemas/history/"
	exit 77
fi
# --no-renames: a rename shows as a deletion, which is what it does to a
# reader that looks the old path up.
changed=$({
	git log --format= --name-status --no-renames --diff-filter=MDT -- schemas/history
	git diff --name-status --no-renames --diff-filter=MDT HEAD -- schemas/history
} | sort -u)
if [ -n "$changed" ]; then
	echo "FAIL - released schemas in schemas/history/ were changed or removed;"
	echo "       they are append-only (docs/SCHEMAS.md):"
	echo "$changed"
	exit 1
fi
echo "ok   - schemas/history/ is append-only ($(git ls-files schemas/history | wc -l) released schemas)"
