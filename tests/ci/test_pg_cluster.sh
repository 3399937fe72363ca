#!/usr/bin/env bash
# ci/pg.sh starts a throwaway cluster, it answers queries, a second start is a no-op, and stop stops it.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d "${SPACES_BUILD_DIR:-/tmp}/pgtest.XXXXXX")
chmod 755 "$dir"
trap '"$root/ci/pg.sh" stop "$dir" || true; rm -rf "$dir"' EXIT
url=$("$root/ci/pg.sh" start "$dir")
echo "started: $url"
[ "$(psql "$url" -tAc 'SELECT 40 + 2')" = 42 ] || { echo "query failed"; exit 1; }
[ "$("$root/ci/pg.sh" start "$dir")" = "$url" ] || { echo "second start changed the URL"; exit 1; }
"$root/ci/pg.sh" status "$dir"
"$root/ci/pg.sh" stop "$dir"
if "$root/ci/pg.sh" status "$dir"; then echo "still running after stop"; exit 1; fi
if psql "$url" -tAc 'SELECT 1' >/dev/null 2>&1; then echo "still answering after stop"; exit 1; fi
echo "ok"
