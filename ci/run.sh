#!/usr/bin/env bash
# ci/run.sh BUILD_DIR: `make run`. Starts the local PostgreSQL cluster under var/,
# applies the migrations, makes sure a development admin exists, and serves the
# site on 127.0.0.1:5001 (override with SPACES_LISTEN=HOST:PORT). Development
# mode: the password policy skips the common-password list (test scripts sign
# up with passwords like "testpass").
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build/release}
mkdir -p var
chmod 755 var
url=$(ci/pg.sh start var/pg)
echo "run: PostgreSQL at $url (data in var/pg; stop it with: ci/pg.sh stop var/pg)"
export DATABASE_URL=${DATABASE_URL:-$url}
"$dir/spaces-server" migrate --database-url "$DATABASE_URL"

# A development admin, only for this local database, only when there is none.
admins=$(psql "$DATABASE_URL" -tAc "SELECT count(*) FROM users WHERE is_admin")
if [ "$admins" = 0 ]; then
  echo admin123 | "$dir/spaces-server" user add admin --admin --database-url "$DATABASE_URL" >/dev/null
  cat <<'MSG'
**********************************************************************
*  DEVELOPMENT ADMIN CREATED: user "admin", password "admin123".     *
*  This is for the local database under var/ only. Never use it in   *
*  production: create real admins with `spaces-server user add`.     *
**********************************************************************
MSG
fi
exec "$dir/spaces-server" --listen "${SPACES_LISTEN:-127.0.0.1:5001}" --database-url "$DATABASE_URL" \
  --upload-dir var/uploads --password-policy relaxed
