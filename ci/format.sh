#!/usr/bin/env bash
# ci/format.sh check|fix: clang-format over our own C sources (.clang-format at the root).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-check}
mapfile -t files < <(git ls-files -co --exclude-standard -- '*.c' '*.h' | grep -v -E '^tests/fuzz/corpus/' || true)
[ ${#files[@]} -gt 0 ] || exit 0
if [ "$mode" = fix ]; then
  clang-format -i "${files[@]}"
else
  clang-format --dry-run -Werror "${files[@]}"
  echo "format: ${#files[@]} files formatted as .clang-format says"
fi
