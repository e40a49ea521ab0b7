#!/usr/bin/env bash
# scripts/format.sh — the C sources as .clang-format writes them.
#
#   bash scripts/format.sh            rewrite every tracked .c/.h file in place
#   bash scripts/format.sh --check    change nothing; list the files that
#                                     differ, show the first lines of each
#                                     difference, exit 1 if any does
#   bash scripts/format.sh FILE...    rewrite (or, with --check, check) FILEs
#
# The rules are in .clang-format (librdkafka's layout: 8-space indent, 80
# columns, aligned assignments). CI runs the check as the ctest
# style.clang_format. Debian 12's clang-format is version 14; another
# version may lay out a few constructs differently, so the check uses the
# one scripts/setup.sh installs.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

check=0
files=()
for arg in "$@"; do
  case "$arg" in
    --check) check=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "format.sh: unknown option: $arg" >&2; exit 2 ;;
    *) files+=("$arg") ;;
  esac
done

command -v clang-format >/dev/null ||
  { echo "format.sh: clang-format is not installed (bash scripts/setup.sh installs it)" >&2; exit 1; }

if ((${#files[@]} == 0)); then
  if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    mapfile -t files < <(git ls-files '*.c' '*.h')
  else
    mapfile -t files < <(find common consumer producer schemas state include tests bench examples \
      -name '*.c' -o -name '*.h' | sort)
  fi
fi
((${#files[@]})) || { echo "format.sh: no C files found" >&2; exit 1; }

if ((!check)); then
  clang-format -i --style=file "${files[@]}"
  exit 0
fi

bad=0
for f in "${files[@]}"; do
  if ! out=$(clang-format --style=file "$f" | diff -u --label "$f" --label "$f (formatted)" "$f" -); then
    bad=$((bad + 1))
    head -n 20 <<<"$out"
  fi
done
echo "format.sh: ${#files[@]} files checked, $bad not as .clang-format writes them"
if ((bad)); then
  echo "format.sh: run 'bash scripts/format.sh' to rewrite them" >&2
  exit 1
fi
