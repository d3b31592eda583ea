#!/bin/sh
# build-win-lua.sh [DIR] — builds Lua 5.4 for Windows with mingw-w64 into DIR (default
# build/win-lua): lua54.dll, its import library, lua.exe and the headers a C module needs.
# The source is Debian's lua5.4 source package, fetched at run time through a private deb-src
# list (nothing of Lua is committed, and the system's apt configuration is left alone), with
# Debian's patches applied when dpkg-source or patch is at hand.
set -eu

out=${1:-build/win-lua}
cc=${WIN_CC:-x86_64-w64-mingw32-gcc}
if ! command -v "$cc" >/dev/null; then
  echo "build-win-lua: $cc not found (apt-get install mingw-w64)" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/lxshm-lua.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
mkdir -p "$work/parts" "$work/lists/partial" "$work/cache/archives/partial" "$work/get"

# deb-src twins of the system's package sources: deb822 stanzas and one-line entries.
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  sed 's/^Types:.*/Types: deb-src/' "$f" >>"$work/parts/lxshm-src.sources"
  echo >>"$work/parts/lxshm-src.sources"
done
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
  [ -f "$f" ] || continue
  sed -n 's/^[[:space:]]*deb[[:space:]]/deb-src /p' "$f" >>"$work/parts/lxshm-src.list"
done

# As root, apt downloads as its own unprivileged user, which cannot write into our private
# directory: download as root then (the files are checked against the signed index anyway).
sandbox=""
[ "$(id -u)" -ne 0 ] || sandbox="-o APT::Sandbox::User=root"
apt() {
  # shellcheck disable=SC2086
  apt-get -q $sandbox -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$work/parts" \
    -o Dir::State::Lists="$work/lists" -o Dir::Cache="$work/cache" "$@"
}
echo "build-win-lua: fetching Debian's lua5.4 source package"
apt update >"$work/update.log" 2>&1 || { cat "$work/update.log" >&2; exit 1; }
(cd "$work/get" && apt source --download-only lua5.4 >/dev/null)

# Unpack: dpkg-source applies Debian's patches; without it, apply them with patch.
cd "$work/get"
if command -v dpkg-source >/dev/null; then
  dpkg-source --no-check -x ./lua5.4_*.dsc lua >/dev/null
else
  mkdir lua
  tar -xf ./lua5.4_*.orig.tar.* -C lua --strip-components=1
  tar -xf ./lua5.4_*.debian.tar.* -C lua
  if command -v patch >/dev/null && [ -f lua/debian/patches/series ]; then
    grep -v '^#' lua/debian/patches/series | while read -r p _; do
      [ -n "$p" ] && patch -d lua -p1 -s <"lua/debian/patches/$p"
    done
  else
    echo "build-win-lua: no dpkg-source or patch: upstream Lua, without Debian's patches" >&2
  fi
fi
version=$(sed -n 's/^Version: //p' ./lua5.4_*.dsc)
cd - >/dev/null

# Build as Lua's own `make mingw` does: the core and libraries in lua54.dll, lua.c beside it.
src="$work/get/lua/src"
mkdir -p "$out"
set --
for f in "$src"/*.c; do
  case $f in */lua.c | */luac.c) ;; *) set -- "$@" "$f" ;; esac
done
flags="-O2 -std=gnu99 -DLUA_COMPAT_5_3 -DLUA_BUILD_AS_DLL"
# shellcheck disable=SC2086 # $flags: several words
"$cc" $flags -shared -s -o "$out/lua54.dll" "$@" -Wl,--out-implib,"$out/liblua54.dll.a"
# shellcheck disable=SC2086
"$cc" $flags -s -o "$out/lua.exe" "$src/lua.c" "$out/liblua54.dll.a"
cp "$src/lua.h" "$src/luaconf.h" "$src/lualib.h" "$src/lauxlib.h" "$src/lua.hpp" "$out/"
echo "build-win-lua: Debian's lua5.4 $version for Windows in $out (lua.exe, lua54.dll, headers)"
