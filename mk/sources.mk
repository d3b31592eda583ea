# mk/sources.mk — the one list of lxshm's C sources, read by every build: the Linux module and
# static library, the ASan builds, the C tests, the fuzz target, and the Windows library, test
# exe and core.dll (mk/windows.mk). A new file is one word in one list here; nothing else names
# source files.

# The platform-independent core: lxshm.h's functions on top of src/platform.h.
CORE_SRC  = src/status.c src/name.c src/object.c src/wait.c src/ring.c src/segment.c src/queue.c \
            src/dict.c src/topic.c src/number.c

# One implementation of src/platform.h per OS; the core needs exactly one of them.
POSIX_SRC = src/platform_posix.c
WIN_SRC   = src/platform_win.c

# Lua values to bytes and back: the only core file that includes lua.h. Also the fuzz target's.
CODEC_SRC = src/codec.c

# What both Lua modules (lxshm.core, lxshm.redis) link: the codec and lxaux.c, the Lua-facing
# helpers of the API they share (arguments, options, failures, lists, dictionary keys).
LUA_COMMON_SRC = $(CODEC_SRC) src/lxaux.c

# The Lua module lxshm.core: the common part and the binding, linked with the core and a platform.
LUA_SRC   = $(LUA_COMMON_SRC) src/binding.c src/binding_segment.c src/binding_queue.c \
            src/binding_dict.c src/binding_topic.c

# The Redis backend, the Lua module lxshm.redis (mk/redis.mk; built only where hiredis is). It
# links LUA_COMMON_SRC and the core's pure files (REDIS_CORE_SRC), nothing that maps or locks.
REDIS_SRC = src/redis/conn.c src/redis/module.c src/redis/segment.c src/redis/queue.c \
            src/redis/dict.c src/redis/topic.c
# Of the core, what lxshm.redis links: the status list, the rule for names, the records of
# lists and incr's numbers (no OS, no Lua).
REDIS_CORE_SRC = src/status.c src/name.c src/ring.c src/number.c

# C tests of the core (spec/c/, no Lua): test bodies both runners share, then each OS's runner
# with the tests only that OS has (spec/c/test_list.h says which and why).
CTEST_SRC       = spec/c/common.c spec/c/tests_segment.c spec/c/tests_process.c \
                  spec/c/tests_lock.c spec/c/tests_wait.c spec/c/tests_queue.c \
                  spec/c/tests_dict.c spec/c/tests_topic.c
CTEST_POSIX_SRC = spec/c/runner_posix.c spec/c/tests_posix.c
CTEST_WIN_SRC   = spec/c/runner_win.c spec/c/tests_win.c
