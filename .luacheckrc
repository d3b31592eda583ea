std = "lua54"
max_line_length = 100
files["spec/"] = { std = "+busted" }
-- bench/corpus.lua is a byte-identical copy of the shared benchmark corpus: never edited here.
exclude_files = { "build/", ".luarocks/", "lua_modules/", "bench/corpus.lua" }
