# lxshm — build, test, demo, benchmark and install. `make help` lists the targets.
#
# Variables a packager may set (luarocks sets the first group):
#   CFLAGS LIBFLAG LUA_INCDIR LUA INST_LIBDIR INST_LUADIR PREFIX WERROR

LUA        ?= lua5.4
LUA_VERSION = 5.4
LUA_INCDIR ?= /usr/include/lua$(LUA_VERSION)
CC         ?= cc
CFLAGS     ?= -O2 -g
LIBFLAG    ?= -shared
WERROR     ?= -Werror
PREFIX     ?= /usr/local
INST_LIBDIR ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
INST_LUADIR ?= $(PREFIX)/share/lua/$(LUA_VERSION)
BUSTED     ?= /usr/bin/busted

# Our flags come after the caller's, so a packager's CFLAGS cannot turn the warnings off.
WARN     = -Wall -Wextra $(WERROR) -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla
LXFLAGS  = -std=c11 -fPIC -fvisibility=hidden -I$(LUA_INCDIR) $(WARN)
ASANFLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all

CORE_SRC = src/status.c src/object.c src/wait.c src/ring.c src/segment.c src/queue.c src/topic.c \
           src/platform_posix.c
MOD_SRC  = $(CORE_SRC) src/codec.c src/binding.c src/binding_segment.c src/binding_queue.c \
           src/binding_topic.c
HEADERS  = $(wildcard src/*.h)

MODULE      = build/lxshm/core.so
ASAN_MODULE = build/asan/lxshm/core.so
TESTPROC    = build/test/proc.so
ASAN_TESTPROC = build/asan/test/proc.so
CTEST       = build/test_core
BENCHCLOCK  = build/bench/clock.so

# Tests run the interpreter on the specs directly: /usr/bin/busted starts with `env lua`,
# which is Lua 5.1 once lua-check is installed (see TOOLCHAIN notes in README.md).
RUN_SPECS = $(LUA) $(BUSTED)
LUAENV    = LUA_PATH='lua/?.lua;;' LUA_CPATH='build/?.so;;'

.PHONY: all test ctest specs asan valgrind demo bench fuzz lint install uninstall clean help

all: $(MODULE)

help:
	@echo "make            build $(MODULE)"
	@echo "make demo       two processes exchanging tables through a segment"
	@echo "make test       C tests of the core, then the busted suite (installs what is missing)"
	@echo "make asan       the whole suite against an ASan+UBSan build"
	@echo "make valgrind   the busted suite under valgrind"
	@echo "make bench      benchmarks against the alternatives"
	@echo "make fuzz       the decoder under libFuzzer for FUZZ_TIME seconds (default 60)"
	@echo "make windows    cross-build the core, C tests and C example with mingw-w64"
	@echo "make test-windows      run the Windows C tests under Wine"
	@echo "make windows-lua LUA_WIN=DIR   build lxshm/core.dll against a Windows Lua 5.4"
	@echo "make test-windows-lua  build Lua 5.4 for Windows from Debian's source, smoke-test it"
	@echo "make lint       luacheck over the Lua sources"
	@echo "make install PREFIX=/usr/local"
	@echo "make clean"

$(MODULE): $(MOD_SRC) $(HEADERS) | check-headers
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LXFLAGS) $(LIBFLAG) -o $@ $(MOD_SRC)

$(ASAN_MODULE): $(MOD_SRC) $(HEADERS) | check-headers
	@mkdir -p $(dir $@)
	$(CC) $(ASANFLAGS) $(LXFLAGS) -shared -fsanitize=address,undefined -Wl,-z,nodelete \
	  -o $@ $(MOD_SRC)

$(TESTPROC): spec/helpers/proc.c | check-headers
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LXFLAGS) -D_GNU_SOURCE $(LIBFLAG) -o $@ $<

$(ASAN_TESTPROC): spec/helpers/proc.c | check-headers
	@mkdir -p $(dir $@)
	$(CC) $(ASANFLAGS) $(LXFLAGS) -D_GNU_SOURCE -shared -fsanitize=address,undefined -o $@ $<

$(BENCHCLOCK): bench/clock.c | check-headers
	@mkdir -p $(dir $@)
	$(CC) -O2 $(LXFLAGS) $(LIBFLAG) -o $@ $<

$(CTEST): spec/c/test_core.c spec/c/check.h $(CORE_SRC) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LXFLAGS) -D_GNU_SOURCE -Isrc -o $@ spec/c/test_core.c $(CORE_SRC)

build/asan/test_core: spec/c/test_core.c spec/c/check.h $(CORE_SRC) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ASANFLAGS) $(LXFLAGS) -D_GNU_SOURCE -Isrc -o $@ spec/c/test_core.c $(CORE_SRC)

check-headers:
	@test -f $(LUA_INCDIR)/lua.h || { echo "lxshm: Lua 5.4 headers not found in $(LUA_INCDIR)."; \
	  echo "  Install them with: sudo apt-get install -y liblua5.4-dev (or run make test/demo)"; exit 1; }

# Installs (or asks for) the Debian packages a target needs: $(call deps,test).
deps = @sh scripts/ensure-deps.sh $(1)

ctest: $(CTEST)
	./$(CTEST)

specs: $(MODULE) $(TESTPROC)
	$(RUN_SPECS)

test:
	$(call deps,test)
	@$(MAKE) --no-print-directory ctest specs

asan:
	$(call deps,test)
	@$(MAKE) --no-print-directory build/asan/test_core $(ASAN_MODULE) $(ASAN_TESTPROC)
	./build/asan/test_core
	LXSHM_TEST_SLOW=3 LD_PRELOAD=$$($(CC) -print-file-name=libasan.so) \
	  $(RUN_SPECS) --cpath='build/asan/?.so'

valgrind:
	$(call deps,test)
	@$(MAKE) --no-print-directory $(MODULE) $(TESTPROC)
	LXSHM_TEST_SLOW=4 valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
	  --keep-debuginfo=yes --error-exitcode=99 $(RUN_SPECS)

demo:
	$(call deps,demo)
	@$(MAKE) --no-print-directory $(MODULE)
	$(LUAENV) $(LUA) examples/demo.lua
	@echo
	$(LUAENV) $(LUA) examples/job_queue/run.lua

bench:
	$(call deps,bench)
	@$(MAKE) --no-print-directory $(MODULE) $(BENCHCLOCK)
	LUA_PATH='lua/?.lua;bench/?.lua;;' LUA_CPATH='build/?.so;;' $(LUA) bench/run.lua

# The decoder under libFuzzer with ASan+UBSan (fuzz/README.md). FUZZ_TIME seconds; new inputs
# go to fuzz/work, findings to fuzz/findings; the committed seeds are only read.
FUZZ_TIME ?= 60
FUZZER = build/fuzz/decode_fuzz

$(FUZZER): fuzz/decode_fuzz.c src/codec.c src/status.c $(HEADERS)
	@mkdir -p $(dir $@)
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -std=c11 \
	  -Wall -Wextra -Werror -I$(LUA_INCDIR) -Isrc -o $@ fuzz/decode_fuzz.c src/codec.c \
	  src/status.c -llua$(LUA_VERSION)

fuzz:
	$(call deps,fuzz)
	@$(MAKE) --no-print-directory $(FUZZER)
	@mkdir -p fuzz/work fuzz/findings
	nice ./$(FUZZER) -max_total_time=$(FUZZ_TIME) -artifact_prefix=fuzz/findings/ \
	  -print_final_stats=1 fuzz/work fuzz/seeds

lint:
	luacheck --no-color lua/ spec/ examples/ bench/

install: $(MODULE)
	install -d $(DESTDIR)$(INST_LIBDIR)/lxshm $(DESTDIR)$(INST_LUADIR)
	install -m 0755 $(MODULE) $(DESTDIR)$(INST_LIBDIR)/lxshm/core.so
	install -m 0644 lua/lxshm.lua $(DESTDIR)$(INST_LUADIR)/lxshm.lua

uninstall:
	rm -f $(DESTDIR)$(INST_LIBDIR)/lxshm/core.so $(DESTDIR)$(INST_LUADIR)/lxshm.lua

clean:
	rm -rf build

# Windows cross-build and tests (mk/windows.mk): make windows, make test-windows.
-include mk/windows.mk
