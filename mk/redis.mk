# mk/redis.mk — the Redis backend, the Lua module lxshm.redis (SPEC §12), included by the
# Makefile. Built only where hiredis is installed (pkg-config hiredis: Debian's libhiredis-dev);
# elsewhere nothing here is built, and lxshm.connect("redis://…") says how to get it. The core
# never needs hiredis: this module links the codec and the status list from src/, and hiredis.
# Sources: REDIS_SRC in mk/sources.mk.

HIREDIS := $(shell pkg-config --exists hiredis 2>/dev/null && echo yes)

ifeq ($(HIREDIS),yes)
HIREDIS_CFLAGS := $(shell pkg-config --cflags hiredis)
HIREDIS_LIBS   := $(shell pkg-config --libs hiredis)
REDIS_HEADERS   = $(wildcard src/redis/*.h) $(HEADERS)

REDIS_MODULE      = $(LUA_BUILD)/lxshm/redis.so
ASAN_REDIS_MODULE = build/asan/lxshm/redis.so
REDIS_OBJS      = $(patsubst src/redis/%.c,$(LUA_BUILD)/redis-obj/%.o,$(REDIS_SRC)) \
                  $(call objs,$(LUA_BUILD)/lua-obj,$(CODEC_SRC)) build/obj/status.o
ASAN_REDIS_OBJS = $(patsubst src/redis/%.c,build/asan/redis-obj/%.o,$(REDIS_SRC)) \
                  $(call objs,build/asan/lua-obj,$(CODEC_SRC)) build/asan/obj/status.o

$(LUA_BUILD)/redis-obj/%.o: src/redis/%.c $(REDIS_HEADERS) | check-headers
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LXFLAGS) $(HIREDIS_CFLAGS) -c -o $@ $<

build/asan/redis-obj/%.o: src/redis/%.c $(REDIS_HEADERS) | check-headers
	@mkdir -p $(dir $@)
	$(CC) $(ASANFLAGS) $(LXFLAGS) $(HIREDIS_CFLAGS) -c -o $@ $<

$(REDIS_MODULE): $(REDIS_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LXFLAGS) $(LIBFLAG) -o $@ $(REDIS_OBJS) $(HIREDIS_LIBS)

$(ASAN_REDIS_MODULE): $(ASAN_REDIS_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ASANFLAGS) $(LXFLAGS) -shared -fsanitize=address,undefined -Wl,-z,nodelete \
	  -o $@ $(ASAN_REDIS_OBJS) $(HIREDIS_LIBS)

# Built with the core module, and before the specs, the ASan suite and the benchmarks run.
all: $(REDIS_MODULE)
specs valgrind bench: $(REDIS_MODULE)
asan: $(ASAN_REDIS_MODULE)

install-lua: install-redis
install-redis: $(REDIS_MODULE)
	install -d $(DESTDIR)$(INST_LIBDIR)/lxshm
	install -m 0755 $(REDIS_MODULE) $(DESTDIR)$(INST_LIBDIR)/lxshm/redis.so

uninstall-lua: uninstall-redis
uninstall-redis:
	rm -f $(DESTDIR)$(INST_LIBDIR)/lxshm/redis.so

.PHONY: install-redis uninstall-redis
endif

FORMAT_FILES += $(sort $(wildcard src/redis/*.c src/redis/*.h))
