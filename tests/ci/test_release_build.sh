#!/usr/bin/env bash
# The Release build (what `make run` and `make bench` use) of the whole tree,
# tests included, compiles without warnings: -O2 finds things -O1 does not
# (-Wformat-truncation, -Wmaybe-uninitialized). Build only: the tests run in
# the Debug (sanitizer) build. RelWithDebInfo adds -g to the same -O2, so
# its warnings are these. Then its spaces-server answers --help.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir="${SPACES_BUILD_DIR:-$root/build/debug}/release-check"
cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=ON >/dev/null
cmake --build "$dir" -j 2
# grep reads all of it: with -q it could leave early and the help's next write
# would die of SIGPIPE (pipefail).
"$dir/spaces-server" --help | grep -- "--database-url" >/dev/null
"$dir/spaces-server" --version
echo "ok"
