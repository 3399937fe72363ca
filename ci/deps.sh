#!/usr/bin/env bash
# ci/deps.sh [run|test]: installs the Debian and npm packages the project uses.
#   run   what building and running spaces-server need (`make run`, `make deb`)
#   test  that and the test toolchain: browsers, clang, Python clients, the
#         npm packages of the tests (`make test`; the default)
# Does nothing (and needs no network) when everything is already present.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-test}
case "$mode" in run | test) ;; *) echo "usage: ci/deps.sh [run|test]" >&2; exit 2 ;; esac

# Building and running (dpkg-dev: CPack's Debian packages, dpkg-shlibdeps).
RUN_PKGS=(
  build-essential dpkg-dev cmake pkg-config libuv1-dev libmsgpack-dev libpq-dev
  postgresql node-llhttp libjansson-dev libsodium-dev libssl-dev zlib1g-dev
)
# Testing, benchmarking, formatting.
TEST_PKGS=(
  clang clang-format libclang-rt-14-dev libwebsockets-dev libwebsockets-evlib-uv
  libcmocka-dev python3-socketio python3-engineio python3-requests
  python3-websocket python3-aiohttp python3-msgpack python3-pytest
  curl procps psmisc iproute2 gnuplot-nox chromium firefox-esr liburing-dev
  webkit2gtk-driver xvfb xauth python3-markdown python3-prometheus-client
)
DEB_PKGS=("${RUN_PKGS[@]}")
[ "$mode" = run ] || DEB_PKGS+=("${TEST_PKGS[@]}")

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

# npm packages, pinned by their lockfiles: web/ holds only the socket.io-client
# bundle the server serves (copied into the build); tests/ the test clients
# and reference servers.
npm_dirs=(web)
[ "$mode" = run ] || npm_dirs+=(tests)
for d in "${npm_dirs[@]}"; do
  if [ -L "$d/node_modules" ]; then
    # A link to an install shared with other checkouts: npm ci would empty it
    # for all of them while it reinstalls.
    echo "deps: $d/node_modules links to a shared install: npm packages left as they are"
  elif [ ! -d "$d/node_modules" ] || [ "$d/package-lock.json" -nt "$d/node_modules/.package-lock.json" ]; then
    if ! command -v node >/dev/null; then
      echo "deps: node is required (Node.js 20 or newer) and was not found" >&2
      exit 1
    fi
    echo "deps: installing npm packages ($d/package-lock.json)"
    (cd "$d" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done
echo "deps: all present ($mode)"
