# lxshm — build, test, demo, benchmark and install. `make help` lists the targets.
#
# Variables a packager may set (luarocks sets the first group):
#   CFLAGS LIBFLAG LUA_INCDIR LUA INST_LIBDIR INST_LUADIR
#   PREFIX DESTDIR INCDIR LIBDIR BINDIR WERROR AR

# The Lua runtime to build for and test with: lua5.1, lua5.2, lua5.3, lua5.4 (the default) or
# luajit. Each gets its headers from pkg-config and a build directory of its own (a module built
# for one does not load in another); lua5.4's is build/ itself (build/lxshm/core.so).
LUA        ?= lua5.4
LUA_NAME    = $(if $(filter luajit%,$(notdir $(LUA))),luajit,$(notdir $(LUA)))
# Headers a packager gives decide the runtime when their directory names one: luarocks builds
# for LuaJIT with LUA=/usr/bin/lua5.1 and LuaJIT's headers, and that build must not land in (or
# be taken from) lua5.1's directory.
ifneq ($(filter command line environment,$(origin LUA_INCDIR)),)
LUA_PKG     = $(or $(if $(findstring luajit,$(LUA_INCDIR)),luajit),$(filter lua5.1 lua5.2 lua5.3 \
                lua5.4,$(subst /, ,$(LUA_INCDIR))),$(LUA_NAME))
else
LUA_PKG     = $(LUA_NAME)
endif
LUA_VERSION = $(if $(filter luajit,$(LUA_PKG)),5.1,$(patsubst lua%,%,$(LUA_PKG)))
LUA_INCDIR ?= $(or $(patsubst -I%,%,$(filter -I%,$(shell pkg-config --cflags $(LUA_PKG) \
                2>/dev/null))),/usr/include/$(LUA_PKG))
LUA_BUILD   = $(if $(filter lua5.4,$(LUA_PKG)),build,build/$(LUA_PKG))
CC         ?= cc
CFLAGS     ?= -O2 -g
LIBFLAG    ?= -shared
WERROR     ?= -Werror
PREFIX     ?= /usr/local
INST_LIBDIR ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
INST_LUADIR ?= $(PREFIX)/share/lua/$(LUA_VERSION)
INCDIR     ?= $(PREFIX)/include
LIBDIR     ?= $(PREFIX)/lib
BINDIR     ?= $(PREFIX)/bin
BUSTED     ?= /usr/bin/busted

# Our flags come after the caller's, so a packager's CFLAGS cannot turn the warnings off.
WARN     = -Wall -Wextra $(WERROR) -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla
LXFLAGS  = -std=c11 -fPIC -fvisibility=hidden -I$(LUA_INCDIR) $(WARN)
ASANFLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all

# Every source list (core, platforms, Lua module, C tests) comes from mk/sources.mk.
include mk/sources.mk
HEADERS  = $(wildcard src/*.h)

# Objects of a list of src/ files in a build directory: $(call objs,DIR,FILES).
objs = $(patsubst src/%.c,$(1)/%.o,$(2))
LIB_OBJS      = $(call objs,build/obj,$(CORE_SRC) $(POSIX_SRC))
MOD_OBJS      = $(LIB_OBJS) $(call objs,$(LUA_BUILD)/lua-obj,$(LUA_SRC))
ASAN_LIB_OBJS = $(call objs,build/asan/obj,$(CORE_SRC) $(POSIX_SRC))
ASAN_MOD_OBJS = $(ASAN_LIB_OBJS) $(call objs,build/asan/lua-obj,$(LUA_SRC))

MODULE      = $(LUA_BUILD)/lxshm/core.so
ASAN_MODULE = build/asan/lxshm/core.so
LIB         = build/liblxshm.a
ASAN_LIB    = build/asan/liblxshm.a
EXAMPLE     = build/exchange
TESTPROC    = $(LUA_BUILD)/test/proc.so
ASAN_TESTPROC = build/asan/test/proc.so
CTEST       = build/test_core
BENCHCLOCK  = $(LUA_BUILD)/bench/clock.so

# Tests run the interpreter on the specs directly: /usr/bin/busted starts with `env lua`,
# which is Lua 5.1 once lua-check is installed (see TOOLCHAIN notes in README.md).
# Children of the specs run the same runtime (LXSHM_TEST_LUA may name a wrapper instead).
LXSHM_TEST_LUA ?= $(LUA)
export LXSHM_TEST_LUA
RUN_SPECS = $(LUA) $(BUSTED)
# $(call luaenv,PATH,CPATH): package paths for any runtime. Lua 5.2 and later read
# LUA_PATH_5_x and LUA_CPATH_5_x before LUA_PATH and LUA_CPATH, so a user's LUA_CPATH_5_4 would
# otherwise win over ours; LuaJIT reads only the plain ones.
luaenv = $(foreach v,_5_2 _5_3 _5_4,LUA_PATH$(v)='$(1)' LUA_CPATH$(v)='$(2)') \
  LUA_PATH='$(1)' LUA_CPATH='$(2)'
LUAENV    = $(call luaenv,lua/?.lua;;,$(LUA_BUILD)/?.so;;)

.PHONY: all test ctest specs module test-runtimes asan valgrind demo bench fuzz fuzz-dict \
  fuzz-object lint format format-check install \
  install-lua install-dev uninstall uninstall-lua uninstall-dev clean help check-headers

all: $(MODULE) $(LIB)

help:
	@echo "make            build $(MODULE) and $(LIB) (the core for C hosts)"
	@echo "make demo       two processes exchanging tables through a segment"
	@echo "make test       C tests of the core and the C example, then the busted suite"
	@echo "                (installs the Debian packages that are missing)"
	@echo "make test LUA=lua5.1   the same on another runtime: lua5.1 lua5.2 lua5.3 lua5.4 luajit"
	@echo "make specs LUA=luajit  the busted suite alone (the C tests do not depend on the runtime)"
	@echo "make test-runtimes     processes on all five runtimes exchange values"
	@echo "make asan       the whole suite against an ASan+UBSan build"
	@echo "make valgrind   the busted suite under valgrind"
	@echo "make bench      benchmarks against the alternatives"
	@echo "make fuzz       the decoder under libFuzzer for FUZZ_TIME seconds (default 60)"
	@echo "make fuzz-dict  dictionaries under libFuzzer, random operations against a model"
	@echo "make fuzz-object   every method on fuzzed object bytes (header, lock, slots, rings)"
	@echo "make windows    cross-build the core, C tests and C example with mingw-w64"
	@echo "make test-windows      run the Windows C tests under Wine"
	@echo "make windows-lua LUA_WIN=DIR   build lxshm/core.dll against a Windows Lua 5.4"
	@echo "make test-windows-lua  build Lua 5.4 for Windows from Debian's source, smoke-test it"
	@echo "make lint       luacheck over the Lua sources"
	@echo "make format     clang-format (Debian's 14, .clang-format) every C file in place"
	@echo "make format-check   list the C files clang-format would change; fail if any"
	@echo "make install PREFIX=/usr/local   the Lua module, the lxshm command, and lxshm.h and"
	@echo "                liblxshm.a for C hosts (install-lua, install-bin, install-dev: one of"
	@echo "                them; uninstall* undo them)"
	@echo "make clean"

# Each file is compiled once per build directory; the module links the same objects as the
# static library, plus the codec and the binding.
build/obj/%.o: src/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LXFLAGS) -c -o $@ $<

build/asan/obj/%.o: src/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ASANFLAGS) $(LXFLAGS) -c -o $@ $<

# Only the Lua files need Lua's headers, and they are built once per runtime: the C library
# and its tests build without them.
$(LUA_BUILD)/lua-obj/%.o: src/%.c $(HEADERS) | check-headers
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LXFLAGS) -c -o $@ $<

build/asan/lua-obj/%.o: src/%.c $(HEADERS) | check-headers
	@mkdir -p $(dir $@)
	$(CC) $(ASANFLAGS) $(LXFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $(LIB_OBJS)

$(ASAN_LIB): $(ASAN_LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $(ASAN_LIB_OBJS)

$(MODULE): $(MOD_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LXFLAGS) $(LIBFLAG) -o $@ $(MOD_OBJS)

$(ASAN_MODULE): $(ASAN_MOD_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ASANFLAGS) $(LXFLAGS) -shared -fsanitize=address,undefined -Wl,-z,nodelete \
	  -o $@ $(ASAN_MOD_OBJS)

$(TESTPROC): spec/helpers/proc.c | check-headers
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LXFLAGS) -D_GNU_SOURCE -Isrc $(LIBFLAG) -o $@ $<

$(ASAN_TESTPROC): spec/helpers/proc.c | check-headers
	@mkdir -p $(dir $@)
	$(CC) $(ASANFLAGS) $(LXFLAGS) -D_GNU_SOURCE -Isrc -shared -fsanitize=address,undefined -o $@ $<

$(BENCHCLOCK): bench/clock.c | check-headers
	@mkdir -p $(dir $@)
	$(CC) -O2 $(LXFLAGS) -Isrc $(LIBFLAG) -o $@ $<

# C programs link the static library, as a C host would. The C tests are the shared bodies and
# the POSIX runner (mk/sources.mk); they also read internal headers, to steer a segment.
CTEST_POSIX = $(CTEST_SRC) $(CTEST_POSIX_SRC)
CTEST_HEADERS = $(wildcard spec/c/*.h)

$(CTEST): $(CTEST_POSIX) $(CTEST_HEADERS) $(LIB) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LXFLAGS) -D_GNU_SOURCE -Isrc -o $@ $(CTEST_POSIX) $(LIB)

build/asan/test_core: $(CTEST_POSIX) $(CTEST_HEADERS) $(ASAN_LIB) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ASANFLAGS) $(LXFLAGS) -D_GNU_SOURCE -Isrc -o $@ $(CTEST_POSIX) $(ASAN_LIB)

$(EXAMPLE): examples/c/exchange.c $(LIB) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LXFLAGS) -Isrc -o $@ examples/c/exchange.c $(LIB)

check-headers:
	@test -f $(LUA_INCDIR)/lua.h || { echo "lxshm: $(LUA_PKG) headers not found in $(LUA_INCDIR)."; \
	  echo "  Install them with: sudo apt-get install -y $(LUA_DEV) (or run make test/demo)"; exit 1; }

# Installs (or asks for) the Debian packages a target needs, for the runtime chosen:
# $(call deps,test).
LUA_DEV = $(if $(filter luajit,$(LUA_PKG)),libluajit2-5.1-dev,$(if $(filter lua5.1,$(LUA_PKG)),liblua5.1-0-dev,lib$(LUA_PKG)-dev))
deps = @LXSHM_LUA_PKG=$(LUA_PKG) sh scripts/ensure-deps.sh $(1)

# The C example: `exchange wait` in the background, `exchange send` once it says it is ready;
# $(call exchange_check,COMMAND) runs it with COMMAND (the exe, or Wine and the exe).
define exchange_check
	name=exchange-$$$$; out=$$(mktemp); \
	$(1) wait $$name >$$out 2>&1 & pid=$$!; \
	i=0; until grep -q '^ready' $$out || ! kill -0 $$pid 2>/dev/null || [ $$i -ge 300 ]; do \
	  i=$$((i + 1)); sleep 0.1; done; \
	$(1) send $$name 'hello from another process'; s=$$?; \
	wait $$pid; w=$$?; cat $$out; \
	grep -q '^received: hello from another process' $$out && [ $$s -eq 0 ] && [ $$w -eq 0 ]; \
	rc=$$?; rm -f $$out; echo "example: exchange $$([ $$rc -eq 0 ] && echo passed || echo FAILED)"; \
	exit $$rc
endef

ctest: $(CTEST) $(EXAMPLE)
	./$(CTEST)
	@$(call exchange_check,./$(EXAMPLE))

specs: $(MODULE) $(TESTPROC)
	$(RUN_SPECS) --cpath='$(LUA_BUILD)/?.so'

module: $(MODULE)

# Processes on every runtime exchange values (spec/runtimes_spec.lua): each runtime's module is
# built first, and a runtime that cannot run is a failure here.
RUNTIMES = lua5.1 lua5.2 lua5.3 lua5.4 luajit

test-runtimes:
	@for rt in $(RUNTIMES); do LXSHM_LUA_PKG=$$rt sh scripts/ensure-deps.sh test || exit 1; done
	@for rt in $(RUNTIMES); do $(MAKE) --no-print-directory LUA=$$rt module || exit 1; done
	@$(MAKE) --no-print-directory $(TESTPROC)
	LXSHM_TEST_RUNTIMES=all $(RUN_SPECS) --cpath='$(LUA_BUILD)/?.so' spec/runtimes_spec.lua

test:
	$(call deps,test)
	@$(MAKE) --no-print-directory ctest specs

asan:
	$(call deps,test)
	@$(MAKE) --no-print-directory build/asan/test_core $(ASAN_MODULE) $(ASAN_TESTPROC)
	./build/asan/test_core
	LXSHM_TEST_SLOW=3 scripts/asan-specs.sh $$($(CC) -print-file-name=libasan.so) \
	  $(RUN_SPECS) --cpath='build/asan/?.so'

# Tests tagged #heavy (long stress runs whose parent does little but parse its children's
# output) run in every other pass but not here, where the parent alone is slowed 50-fold.
valgrind:
	$(call deps,test)
	@$(MAKE) --no-print-directory $(MODULE) $(TESTPROC)
	LXSHM_TEST_SLOW=4 valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
	  --keep-debuginfo=yes --error-exitcode=99 $(RUN_SPECS) --cpath='$(LUA_BUILD)/?.so' \
	  --exclude-tags=heavy

demo:
	$(call deps,demo)
	@$(MAKE) --no-print-directory $(MODULE)
	$(LUAENV) $(LUA) examples/demo.lua
	@echo
	$(LUAENV) $(LUA) examples/job_queue/run.lua

# Every script runs on $(LUA), then on LuaJIT (lxshm and bench.clock built for it in
# build/luajit/) for the LuaJIT columns; BENCH_LUAJIT= (empty) leaves LuaJIT out.
BENCH_LUAJIT ?= $(if $(filter luajit,$(LUA_PKG)),,luajit)

bench:
	$(call deps,bench)
	$(if $(BENCH_LUAJIT),@LXSHM_LUA_PKG=luajit sh scripts/ensure-deps.sh bench)
	@$(MAKE) --no-print-directory $(MODULE) $(LIB) $(BENCHCLOCK)
	$(if $(BENCH_LUAJIT),@$(MAKE) --no-print-directory LUA=luajit build/luajit/lxshm/core.so \
	  build/luajit/bench/clock.so)
	$(call luaenv,lua/?.lua;bench/?.lua;;,$(LUA_BUILD)/?.so;;) \
	  LXSHM_BENCH_LUAJIT='$(BENCH_LUAJIT)' LXSHM_BENCH_LUAJIT_CPATH='build/luajit/?.so;;' \
	  $(LUA) bench/run.lua

# The decoder under libFuzzer with ASan+UBSan (fuzz/README.md). FUZZ_TIME seconds; new inputs
# go to fuzz/work, findings to fuzz/findings; the committed seeds are only read.
FUZZ_TIME ?= 60
# The fuzz targets are one process: a lock whose bytes name a thread that exists but whose memory
# map this process may not read (PID 1 in a container, another user's process) is held by nobody
# there, so the core may call it damaged instead of waiting on it, as it cannot elsewhere.
FUZZ_MODE = -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
FUZZER = build/fuzz/decode_fuzz

# The codec with the whole core and platform, so that whatever the codec comes to call links.
FUZZ_SRC = fuzz/decode_fuzz.c $(CODEC_SRC) $(CORE_SRC) $(POSIX_SRC)

$(FUZZER): $(FUZZ_SRC) $(HEADERS)
	@mkdir -p $(dir $@)
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -std=c11 $(FUZZ_MODE) \
	  -Wall -Wextra -Werror -I$(LUA_INCDIR) -Isrc -o $@ $(FUZZ_SRC) -llua$(LUA_VERSION)

# Dictionaries under libFuzzer: random operation sequences against a model (fuzz/dict_fuzz.c).
DICT_FUZZER = build/fuzz/dict_fuzz
DICT_FUZZ_SRC = fuzz/dict_fuzz.c $(CORE_SRC) $(POSIX_SRC)

$(DICT_FUZZER): $(DICT_FUZZ_SRC) $(HEADERS)
	@mkdir -p $(dir $@)
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -std=c11 $(FUZZ_MODE) \
	  -D_GNU_SOURCE -Wall -Wextra -Werror -Isrc -o $@ $(DICT_FUZZ_SRC)

fuzz-dict:
	$(call deps,fuzz)
	@$(MAKE) --no-print-directory $(DICT_FUZZER)
	@mkdir -p fuzz/work-dict fuzz/findings
	nice ./$(DICT_FUZZER) -max_total_time=$(FUZZ_TIME) -artifact_prefix=fuzz/findings/ \
	  -print_final_stats=1 fuzz/work-dict

fuzz:
	$(call deps,fuzz)
	@$(MAKE) --no-print-directory $(FUZZER)
	@mkdir -p fuzz/work fuzz/findings
	nice ./$(FUZZER) -max_total_time=$(FUZZ_TIME) -artifact_prefix=fuzz/findings/ \
	  -print_final_stats=1 fuzz/work fuzz/seeds

# Everything that reads an object's bytes, from the Lua methods down (fuzz/object_fuzz.c):
# FUZZ_TIME seconds, findings to fuzz/findings; it starts from no corpus (each input is laid
# over a valid new object).
OBJECT_FUZZER = build/fuzz/object_fuzz
OBJECT_FUZZ_SRC = fuzz/object_fuzz.c $(LUA_SRC) $(CORE_SRC) $(POSIX_SRC)

$(OBJECT_FUZZER): $(OBJECT_FUZZ_SRC) $(HEADERS)
	@mkdir -p $(dir $@)
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -std=c11 $(FUZZ_MODE) \
	  -Wall -Wextra -Werror -I$(LUA_INCDIR) -Isrc -o $@ $(OBJECT_FUZZ_SRC) -llua$(LUA_VERSION)

fuzz-object:
	$(call deps,fuzz)
	@$(MAKE) --no-print-directory $(OBJECT_FUZZER)
	@mkdir -p fuzz/object-work fuzz/findings
	nice ./$(OBJECT_FUZZER) -max_total_time=$(FUZZ_TIME) -artifact_prefix=fuzz/findings/ \
	  -print_final_stats=1 -max_len=4096 fuzz/object-work fuzz/object-seeds

lint:
	luacheck --no-color lua/ spec/ examples/ bench/ bin/lxshm

# Every C file and header of the project, found by pattern so that a new one is covered too.
# Debian's clang-format 14 is the reference: other versions lay some constructs out otherwise.
FORMAT_FILES = $(sort $(wildcard src/*.c src/*.h spec/c/*.c spec/c/*.h spec/helpers/*.c \
  examples/c/*.c examples/c/*.h bench/*.c fuzz/*.c))
ifeq ($(origin CLANG_FORMAT),undefined)
CLANG_FORMAT := $(shell command -v clang-format-14 2>/dev/null || echo clang-format)
endif

format:
	$(call deps,format)
	$(CLANG_FORMAT) -i $(FORMAT_FILES)

format-check:
	$(call deps,format)
	@bad=""; for f in $(FORMAT_FILES); do \
	  $(CLANG_FORMAT) --dry-run -Werror "$$f" >/dev/null 2>&1 || bad="$$bad $$f"; \
	done; \
	if [ -n "$$bad" ]; then \
	  echo "format-check: clang-format would change these files (make format fixes them):"; \
	  for f in $$bad; do echo "  $$f"; done; exit 1; \
	fi; \
	echo "format-check: $(words $(FORMAT_FILES)) C files as clang-format lays them out"

# install = install-lua (the module, where Lua looks) + install-bin (the lxshm command, in
# $(BINDIR)) + install-dev (header and static library for C hosts: cc host.c -llxshm). luarocks
# runs `make install INST_LIBDIR=… INST_LUADIR=…` into a rock tree, which has no place for a C
# library, and sets no PREFIX; it installs the command itself (build.install.bin in the
# rockspec, behind a wrapper that sets the tree's paths). So when INST_LIBDIR comes from the
# command line, install is install-lua alone (INSTALL_DEV=yes, INSTALL_BIN=yes force the rest).
ifeq ($(origin INST_LIBDIR),command line)
INSTALL_DEV ?= no
INSTALL_BIN ?= no
else
INSTALL_DEV ?= yes
INSTALL_BIN ?= yes
endif

install: install-lua $(if $(filter yes,$(INSTALL_BIN)),install-bin) \
  $(if $(filter yes,$(INSTALL_DEV)),install-dev)

install-lua: $(MODULE)
	install -d $(DESTDIR)$(INST_LIBDIR)/lxshm $(DESTDIR)$(INST_LUADIR)
	install -m 0755 $(MODULE) $(DESTDIR)$(INST_LIBDIR)/lxshm/core.so
	install -m 0644 lua/lxshm.lua $(DESTDIR)$(INST_LUADIR)/lxshm.lua

# The command's shebang names the runtime it is installed for, whose module install-lua puts
# beside it (make install LUA=luajit: both for LuaJIT); LUA_SHEBANG overrides it. Its own .PHONY
# line keeps the list above as the other branches know it.
LUA_SHEBANG ?= $(LUA_PKG)

.PHONY: install-bin uninstall-bin

install-bin:
	install -d $(DESTDIR)$(BINDIR)
	sed '1s|^#!.*|#!/usr/bin/env $(LUA_SHEBANG)|' bin/lxshm > $(DESTDIR)$(BINDIR)/lxshm.tmp
	chmod 0755 $(DESTDIR)$(BINDIR)/lxshm.tmp
	mv $(DESTDIR)$(BINDIR)/lxshm.tmp $(DESTDIR)$(BINDIR)/lxshm

install-dev: $(LIB)
	install -d $(DESTDIR)$(INCDIR) $(DESTDIR)$(LIBDIR)
	install -m 0644 src/lxshm.h $(DESTDIR)$(INCDIR)/lxshm.h
	install -m 0644 $(LIB) $(DESTDIR)$(LIBDIR)/liblxshm.a

uninstall: uninstall-lua $(if $(filter yes,$(INSTALL_BIN)),uninstall-bin) \
  $(if $(filter yes,$(INSTALL_DEV)),uninstall-dev)

uninstall-lua:
	rm -f $(DESTDIR)$(INST_LIBDIR)/lxshm/core.so $(DESTDIR)$(INST_LUADIR)/lxshm.lua
	-rmdir $(DESTDIR)$(INST_LIBDIR)/lxshm 2>/dev/null

uninstall-bin:
	rm -f $(DESTDIR)$(BINDIR)/lxshm

uninstall-dev:
	rm -f $(DESTDIR)$(INCDIR)/lxshm.h $(DESTDIR)$(LIBDIR)/liblxshm.a

clean:
	rm -rf build

# The Redis backend, lxshm.redis, where hiredis is installed (mk/redis.mk).
include mk/redis.mk

# Windows cross-build and tests (mk/windows.mk): make windows, make test-windows.
-include mk/windows.mk
