#!/usr/bin/env bash
# The Release build (what `make run` and `make bench` use) compiles without
# warnings: -O2 finds things -O1 does not. Then its spaces-server answers --help.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir="${SPACES_BUILD_DIR:-$root/build/debug}/release-check"
cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build "$dir" -j 2 --target spaces-server bench-server example-chat
"$dir/spaces-server" --help | grep -q -- "--database-url"
"$dir/spaces-server" --version
echo "ok"
