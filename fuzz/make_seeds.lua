-- fuzz/make_seeds.lua — writes the decoder fuzzer's seed corpus to fuzz/seeds/: small encodings
-- of the shared corpus items and of edge values, plus hand-written foreign MessagePack forms
-- that lxshm never writes itself. The same values every run (the order of map pairs may change
-- with Lua's per-run hash seed, which a seed corpus does not mind); rerun after a format change
-- and commit.
--
--   LUA_PATH='lua/?.lua;;' LUA_CPATH='build/?.so;;' lua5.4 fuzz/make_seeds.lua
local lxshm = require("lxshm")

local dir = arg[1] or "fuzz/seeds"

-- The shared benchmark corpus, from its byte-identical copy in bench/ (as the specs read it).
local function load_corpus()
  return dofile("bench/corpus.lua")
end

local function unhex(h)
  return (h:gsub("%s", ""):gsub("..", function(b)
    return string.char(tonumber(b, 16))
  end))
end

local seeds = {}
local function add(name, bytes)
  seeds[#seeds + 1] = { name = name, bytes = bytes }
end
local function value(name, v)
  add(name, assert(lxshm.encode(v)))
end

-- The shared corpus, with the big items cut down to keep the seeds small.
for _, item in ipairs(load_corpus()) do
  local v = item.value
  if item.name == "floats10k" then
    v = { table.unpack(v, 1, 40) }
  elseif item.name == "string1M" then
    v = v:sub(1, 300)
  end
  value("corpus-" .. item.name, v)
end

-- Edge values.
value("nil", nil)
value("true", true)
value("false", false)
for i, n in ipairs({ 0, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296, -1, -32, -33,
  -128, -129, -32768, -32769, -2147483648, -2147483649, math.maxinteger, math.mininteger }) do
  value("int-" .. i, n)
end
for i, f in ipairs({ 0.0, -0.0, 1.5, 0.1, 1 / 0, -1 / 0, 0 / 0, 5e-324, 1e308 }) do
  value("float-" .. i, f)
end
value("str-utf8", "héllo wörld 日本語")
value("str-binary", "\0\1\2\xff\xfe")
value("str8", string.rep("a", 40))
value("str16", string.rep("b", 300))
value("array", { 1, 2.5, "three", true, false })
value("sparse", { 1, 2, nil, 4 })
value("mixed", { 1, 2, x = "y", [1.5] = false, [true] = 0 })
value("map16", (function()
  local t = {}
  for i = 1, 20 do
    t["k" .. i] = i
  end
  return t
end)())
local shared = { "shared" }
value("shared", { shared, shared, { shared }, key = shared })
local cyc = { name = "cycle" }
cyc.self = cyc
cyc.child = { parent = cyc }
value("cycle", cyc)
local key = { "key" }
value("table-key", { [key] = key, [{ 1, { 2 } }] = "nested key" })
local deep = {}
local t = deep
for _ = 2, 200 do
  t[1] = {}
  t = t[1]
end
value("deep-200", deep)

-- Foreign forms lxshm does not write but accepts, and a few it refuses.
add("foreign-int8-pos", unhex("d0 7f"))
add("foreign-uint64-small", unhex("cf 0000000000000001"))
add("foreign-float64-exact", unhex("cb 3ff8000000000000"))
add("foreign-float32-nan", unhex("91 ca 7fc00000"))
add("foreign-array32", unhex("dd 00000002 01 02"))
add("foreign-map32", unhex("df 00000001 a1 61 01"))
add("foreign-str32", unhex("db 00000003 616263"))
add("foreign-bin16", unhex("c5 0002 00ff"))
add("foreign-ref-ext8", unhex("91 c7 01 4c 00"))
add("foreign-ref-fixext8", unhex("92 90 d7 4c 0000000000000001"))
add("foreign-float-key", unhex("81 cb 3ff0000000000000 a1 78"))
add("foreign-dup-key", unhex("82 a1 61 01 a1 61 02"))
add("refused-timestamp", unhex("d6 ff 00000000"))
add("refused-nil-key", unhex("81 c0 01"))
add("refused-uint64-max", unhex("cf ffffffffffffffff"))
add("refused-forward-ref", unhex("92 d4 4c 01 90"))
add("refused-forged-count", unhex("dd ffffffff 01"))

local total = 0
for _, s in ipairs(seeds) do
  local f = assert(io.open(dir .. "/" .. s.name .. ".mp", "wb"))
  f:write(s.bytes)
  f:close()
  total = total + #s.bytes
end
print(("%d seeds, %d bytes, in %s"):format(#seeds, total, dir))
