#!/bin/sh
# ensure-deps.sh [demo|test|bench|fuzz|windows|format] — make sure the Debian packages a make
# target needs are installed. Installs what is missing when it can (root, or sudo without a
# password); otherwise prints the one command to run and fails. Changes nothing when all is
# present.
set -eu

# The Lua runtime the target builds for (the Makefile passes it): its interpreter and headers.
# LuaJIT comes as Debian's luajit or OpenResty's luajit2 (which nginx's Lua module needs):
# either will do, and luajit2 is what gets installed.
case "${LXSHM_LUA_PKG:-lua5.4}" in
  luajit)
    if dpkg-query -W -f='${Status}' libluajit-5.1-dev 2>/dev/null | grep -q "ok installed"; then
      lua="luajit libluajit-5.1-dev"
    else
      lua="luajit2 libluajit2-5.1-dev"
    fi ;;
  lua5.1) lua="lua5.1 liblua5.1-0-dev" ;;
  lua5.2 | lua5.3 | lua5.4) lua="$LXSHM_LUA_PKG lib$LXSHM_LUA_PKG-dev" ;;
  *) lua="lua5.4 liblua5.4-dev" ;;
esac
need="gcc libc6-dev make pkg-config $lua"
case "${1:-test}" in
  demo) ;;
  test) need="$need lua-busted python3-msgpack valgrind"
    # The Redis backend's specs start their own servers: needed once hiredis builds it.
    if pkg-config --exists hiredis 2>/dev/null; then need="$need redis-server redis-tools"; fi ;;
  bench) need="$need lua-cjson lua-messagepack lua-socket lua-redis redis-server" ;;
  windows) need="$need mingw-w64 wine64" ;;
  fuzz) need="$need clang libclang-rt-14-dev" ;;
  format) need="clang-format" ;; # the C sources only: no compiler or Lua needed
  *) echo "ensure-deps.sh: unknown target '$1'" >&2; exit 2 ;;
esac

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "lxshm: not a Debian system; make sure these (Debian names) are installed: $need" >&2
  exit 0
fi

missing=""
for p in $need; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0

echo "lxshm: installing missing Debian packages:$missing"
if [ "$(id -u)" -eq 0 ]; then
  sudo=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo="sudo"
else
  echo "lxshm: cannot install them without root. Run:" >&2
  echo "  sudo apt-get install -y$missing" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has empty package lists: update once, then install.
if ! $sudo apt-get install -y -q --no-install-recommends $missing >/dev/null 2>&1; then
  $sudo apt-get update -q >/dev/null
  $sudo apt-get install -y -q --no-install-recommends $missing >/dev/null
fi
echo "lxshm: installed$missing"
