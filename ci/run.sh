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
  admin_line='*  DEVELOPMENT ADMIN CREATED: user "admin", password "admin123".     *'
else
  admin_line='*  DEVELOPMENT MODE, local database under var/.                      *'
fi
# Development mode: new spaces are open (--legacy-open-spaces), so that the
# unmodified clients and the old test plan register their apps by name alone.
cat <<MSG
**********************************************************************
$admin_line
*  LEGACY OPEN SPACES (--legacy-open-spaces): new spaces take any app *
*  that knows their name, as the old site did.                        *
*  This is for the local database under var/ only. Never use either  *
*  in production: create real admins with \`spaces-server user add\`, *
*  and start without --legacy-open-spaces (new spaces need a token).  *
**********************************************************************
MSG
exec "$dir/spaces-server" --listen "${SPACES_LISTEN:-127.0.0.1:5001}" --database-url "$DATABASE_URL" \
  --upload-dir var/uploads --legacy-open-spaces --password-policy relaxed
