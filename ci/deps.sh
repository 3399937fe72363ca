#!/usr/bin/env bash
# Installs every Debian and npm package the project uses.
# Does nothing (and needs no network) when everything is already present.
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PKGS=(
  build-essential cmake pkg-config clang clang-format libclang-rt-14-dev
  libuv1-dev libwebsockets-dev libwebsockets-evlib-uv libmsgpack-dev libpq-dev
  postgresql node-llhttp libjansson-dev libsodium-dev libssl-dev zlib1g-dev
  libcmocka-dev python3-socketio python3-engineio python3-requests
  python3-websocket python3-aiohttp python3-msgpack python3-pytest
  curl procps psmisc iproute2 gnuplot-nox chromium firefox-esr liburing-dev
  webkit2gtk-driver xvfb xauth python3-markdown
)

missing=()
for p in "${DEB_PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 \
    install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm packages for test clients and reference servers, pinned by the lockfile.
if ! command -v node >/dev/null; then
  echo "deps: node is required (Node.js 20 or newer) and was not found" >&2
  exit 1
fi
if [ -L tests/node_modules ]; then
  # A link to an install shared with other checkouts: npm ci would empty it
  # for all of them while it reinstalls.
  echo "deps: tests/node_modules links to a shared install: npm packages left as they are"
elif [ ! -d tests/node_modules ] || [ tests/package-lock.json -nt tests/node_modules/.package-lock.json ]; then
  echo "deps: installing npm packages (tests/package-lock.json)"
  (cd tests && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "deps: all present"
