# mk/windows.mk — the Windows build, cross-compiled with mingw-w64 and tested under Wine.
# Included from the Makefile. Targets (each installs what it needs: mingw-w64, wine64):
#   make windows              build/win/test_win.exe, build/win/exchange.exe, build/win/liblxshm.a
#   make test-windows         the Windows C tests and the C example under Wine, in a throw-away
#                             WINEPREFIX
#   make windows-lua LUA_WIN=DIR      build/win/lxshm/core.dll against a Windows Lua 5.4 in DIR
#                             (DIR holds lua.h, lauxlib.h, luaconf.h, lualib.h and lua54.dll;
#                             or set LUA_WIN_INC=headers LUA_WIN_LIB=.../lua54.dll apart)
#   make test-windows-lua     builds Lua 5.4 for Windows from Debian's source package
#                             (scripts/build-win-lua.sh), core.dll, and runs spec/win_smoke.lua

WIN_CC      ?= x86_64-w64-mingw32-gcc
WIN_AR      ?= x86_64-w64-mingw32-ar
WIN_CFLAGS  ?= -O2
# mingw's own C99 printf family: msvcrt's knows no %zu (internal.h checks formats against it).
WIN_FORMAT  := -D__USE_MINGW_ANSI_STDIO=1
WIN_FLAGS    = -std=c11 -Isrc $(WARN) $(WIN_FORMAT)
WIN_OBJS     = $(patsubst src/%.c,build/win/obj/%.o,$(CORE_SRC) $(WIN_SRC)) # mk/sources.mk
WIN_DLL_SRC  = $(CORE_SRC) $(WIN_SRC) $(LUA_SRC)
WIN_LIB      = build/win/liblxshm.a
WIN_TEST     = build/win/test_win.exe
WIN_EXAMPLE  = build/win/exchange.exe
WIN_DLL      = build/win/lxshm/core.dll
LUA_WIN     ?= build/win-lua
LUA_WIN_INC ?= $(LUA_WIN)
LUA_WIN_LIB ?= $(LUA_WIN)/lua54.dll

# Wine: Debian's wine64 package installs its loader outside PATH (the `wine` wrapper comes from
# the `wine` package, which ensure-deps does not need). Each run gets its own prefix, deleted at
# the end; wineserver is stopped first.
ifeq ($(origin WINE),undefined)
WINE        := $(shell command -v wine 2>/dev/null || echo /usr/lib/wine/wine64)
endif
ifeq ($(origin WINESERVER),undefined)
WINESERVER  := $(shell command -v wineserver 2>/dev/null || echo /usr/lib/wine/wineserver)
endif
WINE_ENV     = WINEDEBUG=-all WINEDLLOVERRIDES='mscoree,mshtml=' DISPLAY=

.PHONY: windows windows-build test-windows windows-lua test-windows-lua

windows:
	$(call deps,windows)
	@$(MAKE) --no-print-directory windows-build

windows-build: $(WIN_LIB) $(WIN_TEST) $(WIN_EXAMPLE)

build/win/obj/%.o: src/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(WIN_CC) $(WIN_CFLAGS) $(WIN_FLAGS) -c -o $@ $<

$(WIN_LIB): $(WIN_OBJS)
	@rm -f $@
	$(WIN_AR) rcs $@ $(WIN_OBJS)

# The shared C test bodies and the Windows runner (mk/sources.mk).
WIN_TEST_SRC = $(CTEST_SRC) $(CTEST_WIN_SRC)

$(WIN_TEST): $(WIN_TEST_SRC) $(wildcard spec/c/*.h) $(WIN_LIB) $(HEADERS)
	$(WIN_CC) $(WIN_CFLAGS) $(WIN_FLAGS) -o $@ $(WIN_TEST_SRC) $(WIN_LIB)

$(WIN_EXAMPLE): examples/c/exchange.c $(WIN_LIB) $(HEADERS)
	$(WIN_CC) $(WIN_CFLAGS) $(WIN_FLAGS) -o $@ examples/c/exchange.c $(WIN_LIB)

# Runs $(1) under Wine in a fresh prefix, then stops wineserver and deletes the prefix whatever
# the outcome; the recipe fails if $(1) did.
define wine_run
	@prefix=$$(mktemp -d "$${TMPDIR:-/tmp}/lxshm-wine.XXXXXX"); \
	export WINEPREFIX="$$prefix" $(WINE_ENV); \
	echo "wine: prefix $$prefix"; \
	t0=$$(date +%s); \
	$(WINE) wineboot --init >/dev/null 2>&1; \
	echo "wine: prefix ready in $$(( $$(date +%s) - t0 )) s"; \
	( $(1) ); rc=$$?; \
	$(WINESERVER) -k >/dev/null 2>&1; $(WINESERVER) -w >/dev/null 2>&1; \
	rm -rf "$$prefix"; \
	exit $$rc
endef

test-windows:
	$(call deps,windows)
	@$(MAKE) --no-print-directory windows-build
	$(call wine_run,timeout 600 $(WINE) $(WIN_TEST) && \
	  ( $(call exchange_check,$(WINE) $(WIN_EXAMPLE)) ))

# The module links against the Lua DLL itself (mingw's linker reads a DLL's exports directly),
# and carries its libgcc (thread-local variables need it) so it needs no DLL but Lua's.
$(WIN_DLL): $(WIN_DLL_SRC) $(HEADERS)
	@test -f $(LUA_WIN_INC)/lua.h -a -f $(LUA_WIN_LIB) || { \
	  echo "lxshm: no Windows Lua 5.4: $(LUA_WIN_INC)/lua.h or $(LUA_WIN_LIB) is missing."; \
	  echo "  Build one with: sh scripts/build-win-lua.sh (into build/win-lua)"; exit 1; }
	@mkdir -p $(dir $@)
	$(WIN_CC) $(WIN_CFLAGS) $(WIN_FLAGS) -I$(LUA_WIN_INC) -DLUA_BUILD_AS_DLL -DLXSHM_BUILDING_DLL \
	  -shared -static-libgcc -o $@ $(WIN_DLL_SRC) $(LUA_WIN_LIB)

windows-lua:
	$(call deps,windows)
	@$(MAKE) --no-print-directory $(WIN_DLL)

test-windows-lua:
	$(call deps,windows)
	@test -x $(LUA_WIN)/lua.exe || sh scripts/build-win-lua.sh $(LUA_WIN)
	@$(MAKE) --no-print-directory $(WIN_DLL)
	$(call wine_run,LUA_PATH='lua/?.lua' LUA_CPATH='build/win/?.dll' \
	  timeout 300 $(WINE) $(LUA_WIN)/lua.exe spec/win_smoke.lua $(LUA_WIN)/lua.exe)
