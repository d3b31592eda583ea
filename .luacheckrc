std = "lua54"
max_line_length = 100
files["spec/"] = { std = "+busted" }
-- bench/corpus.lua is a byte-identical copy of the shared benchmark corpus: never edited here.
exclude_files = { "build/", ".luarocks/", "lua_modules/", "bench/corpus.lua" }
-- The command runs on every runtime lxshm supports: only what Lua 5.1 to 5.4 and LuaJIT share.
files["bin/lxshm"] = { std = "min" }
