#!/usr/bin/env bash
# ci/pg.sh start DIR [PORT]   start (creating if needed) a throwaway PostgreSQL cluster
#                             in DIR, print its connection URL on stdout
# ci/pg.sh stop DIR           stop it
# ci/pg.sh url DIR            print the URL of a running cluster
# ci/pg.sh status DIR         exit 0 when running
#
# The cluster listens on 127.0.0.1 only, on PORT or a free port, with its
# socket in DIR; trust authentication, fsync off: for development and tests,
# never for production. As root, the cluster runs as the 'postgres' user.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
bindir=$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)
[ -x "$bindir/initdb" ] || bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
data="$dir/data"
user=$(id -un)

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  if [ -x /usr/bin/python3 ]; then
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
    return
  fi
  # Without Python (`make run` does not install it): a port nothing answers on.
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  echo 5432
}

url() {
  local port; port=$(cat "$dir/port")
  echo "postgresql://postgres@127.0.0.1:$port/spaces"
}

case "$cmd" in
start)
  if [ -f "$data/postmaster.pid" ] && as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    url; exit 0
  fi
  port=${3:-$(free_port)}
  echo "$port" > "$dir/port"
  if [ "$(id -u)" -eq 0 ]; then chown -R postgres "$dir"; fi
  if [ ! -f "$data/PG_VERSION" ]; then
    as_owner "$bindir/initdb" -D "$data" -U postgres -A trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  as_owner "$bindir/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 \
    -o "-k $dir -c listen_addresses=127.0.0.1 -p $port -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null || { tail -n 20 "$dir/server.log" >&2; exit 1; }
  if ! as_owner "$bindir/psql" -h "$dir" -p "$port" -U postgres -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname='spaces'" | grep -q 1; then
    as_owner "$bindir/createdb" -h "$dir" -p "$port" -U postgres spaces
  fi
  url
  ;;
stop)
  if [ -f "$data/postmaster.pid" ]; then
    as_owner "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null
  fi
  ;;
url) url ;;
status) as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1 ;;
*) echo "ci/pg.sh: unknown command '$cmd'" >&2; exit 2 ;;
esac
