-- The Lua sources run on Lua 5.1, 5.2, 5.3, 5.4 and LuaJIT 2.1 (SPEC §11), so they are checked
-- against "min", the globals all of those share. What exists only on some runtimes is reached
-- through spec/helpers/util.lua (util.unpack, util.math_type, ...) or by rawget with a fallback.
std = "min"
max_line_length = 100
-- The specs use math.type, math.maxinteger and math.mininteger only under util.HAS_INT (5.3 and
-- 5.4); lint cannot see that guard, the suite's runs on 5.1, 5.2 and LuaJIT do.
files["spec/"] = {
  std = "+busted",
  read_globals = { math = { fields = { "type", "maxinteger", "mininteger" } } },
}
-- Lua 5.4 only: the `<close>` parts of the specs, and the Windows smoke test (a Windows Lua 5.4).
files["spec/helpers/close54.lua"] = { std = "lua54" }
files["spec/win_smoke.lua"] = { std = "lua54" }
-- Lua 5.4 only: the dictionary and topic benchmarks, which measure LuaJIT in processes of their
-- own where they need it (make bench runs them on 5.4 alone).
files["bench/dict_bench.lua"] = { std = "lua54" }
files["bench/topic_bench.lua"] = { std = "lua54" }
-- bench/corpus.lua is a byte-identical copy of the shared benchmark corpus: never edited here.
exclude_files = { "build/", ".luarocks/", "lua_modules/", "bench/corpus.lua" }
-- The command runs on every runtime lxshm supports: only what Lua 5.1 to 5.4 and LuaJIT share.
files["bin/lxshm"] = { std = "min" }
