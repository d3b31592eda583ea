-- bench/codec_bench.lua — lxshm's codec against lua-cjson and MessagePack.lua (pure Lua) on the
-- shared corpus: encode+decode round trips per second, ratios taken repetition by repetition,
-- and encoded sizes. Prints figures only; it never passes or fails on speed.
--
-- Run from the repo root, after `make && make build/bench/clock.so`:
--   LUA_PATH='lua/?.lua;bench/?.lua;;' LUA_CPATH='build/?.so;;' lua5.4 bench/codec_bench.lua
-- Environment: LXSHM_CORPUS (default ../shared/bench/corpus.lua, then bench/corpus.lua),
-- LXSHM_BENCH_REPS (default 9), LXSHM_BENCH_TIME (seconds per timed batch, default 0.1),
-- LXSHM_BENCH_ONLY (one item's name).
--
-- Timed in CPU seconds of this process (the machine is shared and noisy; one process gains
-- nothing from the wall clock), with the malloc state pinned: unless GLIBC_TUNABLES is already
-- set, the script runs itself again with a fixed mmap and trim threshold (lib.pin_malloc), so
-- that the 1 MiB buffers stay on the heap instead of being mapped and faulted in afresh.
local lib = require("lib")
lib.pin_malloc()
lib.use_lua53_modules()

local lxshm = require("lxshm")
local cjson = require("cjson")
local mp = require("MessagePack")

local corpus = lib.load_corpus()
local ONLY = os.getenv("LXSHM_BENCH_ONLY")

local codecs = {
  { name = "lxshm", encode = lxshm.encode, decode = lxshm.decode },
  { name = "cjson", encode = cjson.encode, decode = cjson.decode },
  { name = "msgpack", encode = mp.pack, decode = mp.unpack },
}

-- Table cells keep the original script's precision.
local function fmt(x)
  if x >= 100 then
    return string.format("%.0f", x)
  elseif x >= 10 then
    return string.format("%.1f", x)
  end
  return string.format("%.2f", x)
end

--- A contender doing n round trips of v through codec c.
local function roundtrips(c, v)
  local enc, dec = c.encode, c.decode
  return { name = c.name, run = function(n)
      for _ = 1, n do
        dec(enc(v))
      end
    end }
end

--- A contender doing n calls of op(x): one-way figures and baselines.
local function calls(name, unit, op, x)
  return { name = name, unit = unit, run = function(n)
      for _ = 1, n do
        op(x)
      end
    end }
end

-- One-way lxshm figures, and for strings the cost of one copy into a new Lua string: a round
-- trip through any codec makes at least two (encode and decode each return a new string).
local function extras(item)
  local x = {
    calls("encode.lxshm", "encodes/s", lxshm.encode, item.value),
    calls("decode.lxshm", "decodes/s", lxshm.decode, lxshm.encode(item.value)),
  }
  if type(item.value) == "string" then
    x[#x + 1] = calls("copy.string.sub", "copies/s", function(s) return s:sub(2) end, item.value)
  end
  return x
end

local summary = {}
print(string.format("# codec round trips (encode+decode), %d repetitions of ~%.2f s per codec,"
  .. " medians; GLIBC_TUNABLES=%s", lib.REPS, lib.BATCH, os.getenv("GLIBC_TUNABLES")))
for _, item in ipairs(corpus) do
  if not ONLY or ONLY == item.name then
    local v = item.value
    local sizes, contenders = {}, {}
    for _, c in ipairs(codecs) do
      sizes[c.name] = #c.encode(v)
      contenders[#contenders + 1] = roundtrips(c, v)
    end
    local more = extras(item)
    for _, x in ipairs(more) do
      contenders[#contenders + 1] = x
    end
    -- Every contender, extras included, takes its turn in each repetition, order rotated.
    local per_op = lib.compare(contenders, { timer = lib.clock.cputime })
    local prefix = "codec." .. item.name
    local row = { name = item.name, sizes = sizes }
    for _, c in ipairs(codecs) do
      row[c.name] = lib.figure(prefix .. ".roundtrip." .. c.name, lib.rate(per_op[c.name]),
        "roundtrips/s")
    end
    row.vs_cjson = lib.figure(prefix .. ".ratio.lxshm/cjson",
      lib.ratios(per_op.cjson, per_op.lxshm), "x")
    row.vs_mp = lib.figure(prefix .. ".ratio.lxshm/msgpack",
      lib.ratios(per_op.msgpack, per_op.lxshm), "x")
    for _, x in ipairs(more) do
      lib.figure(prefix .. "." .. x.name, lib.rate(per_op[x.name]), x.unit)
    end
    for _, c in ipairs(codecs) do
      print(string.format("%s.size.%s: %d bytes", prefix, c.name, sizes[c.name]))
    end
    summary[#summary + 1] = row
  end
end

print()
print("| item | lxshm rt/s | cjson rt/s | MessagePack.lua rt/s | lxshm/cjson | lxshm/msgpack"
  .. " | bytes lxshm / cjson / msgpack |")
print("| --- | --: | --: | --: | --: | --: | --: |")
for _, row in ipairs(summary) do
  print(string.format("| %s | %s | %s | %s | %s× | %s× | %d / %d / %d |", row.name, fmt(row.lxshm),
    fmt(row.cjson), fmt(row.msgpack), fmt(row.vs_cjson), fmt(row.vs_mp), row.sizes.lxshm,
    row.sizes.cjson, row.sizes.msgpack))
end
