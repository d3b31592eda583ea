rockspec_format = "3.0"
package = "lxshm"
version = "0.1.0-1"
source = {
  url = "git+https://example.invalid/lxshm.git",
  tag = "v0.1.0",
}
description = {
  summary = "Share strings and Lua tables between processes through named shared memory",
  detailed = [[
    lxshm lets Lua scripts in separate processes on one machine exchange strings and Lua
    tables through a named shared-memory segment guarded by an inter-process lock: atomic
    values that survive a crashed writer, waiting for changes, and queues.
  ]],
  license = "MIT",
  labels = { "ipc", "shared-memory", "msgpack" },
}
dependencies = {
  "lua >= 5.1",
}
build = {
  type = "make",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    LIBFLAG = "$(LIBFLAG)",
    LUA_INCDIR = "$(LUA_INCDIR)",
    LUA = "$(LUA)",
    -- Users' compilers may warn about things ours does not; CI builds with -Werror.
    WERROR = "",
  },
  -- The same runtime as the build (the Makefile's default is lua5.4): lua5.1 or LuaJIT rocks
  -- must install the module built for them.
  install_variables = {
    INST_LIBDIR = "$(LIBDIR)",
    INST_LUADIR = "$(LUADIR)",
    LUA_INCDIR = "$(LUA_INCDIR)",
    LUA = "$(LUA)",
  },
  -- The lxshm command; luarocks puts a wrapper in the tree's bin that sets the tree's paths.
  install = {
    bin = { lxshm = "bin/lxshm" },
  },
}
test = {
  type = "command",
  command = "make test",
}
