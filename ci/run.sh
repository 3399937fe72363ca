#!/usr/bin/env bash
# ci/run.sh BUILD_DIR: `make run`. Starts the local PostgreSQL cluster under var/
# and serves the site on 127.0.0.1:5001 (override with SPACES_LISTEN=HOST:PORT).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build/release}
mkdir -p var
chmod 755 var
url=$(ci/pg.sh start var/pg)
echo "run: PostgreSQL at $url (data in var/pg; stop it with: ci/pg.sh stop var/pg)"
export DATABASE_URL=${DATABASE_URL:-$url}
exec "$dir/spaces-server" --listen "${SPACES_LISTEN:-127.0.0.1:5001}"
