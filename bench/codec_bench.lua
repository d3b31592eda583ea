-- bench/codec_bench.lua — lxshm's codec against lua-cjson and MessagePack.lua (pure Lua) on the
-- shared corpus: encode+decode round trips per second, ratios taken repetition by repetition,
-- and encoded sizes. Prints figures only; it never passes or fails on speed.
--
-- Run from the repo root, after `make`:
--   LUA_PATH='lua/?.lua;;' LUA_CPATH='build/?.so;;' lua5.4 bench/codec_bench.lua
-- Environment: LXSHM_CORPUS (default ../shared/bench/corpus.lua, then bench/corpus.lua),
-- LXSHM_BENCH_REPS (default 9), LXSHM_BENCH_TIME (seconds per timed batch, default 0.1),
-- LXSHM_BENCH_ONLY (one item's name).
--
-- Big items are timed with the malloc state pinned: unless GLIBC_TUNABLES is already set, the
-- script runs itself again with a fixed mmap and trim threshold, so that the 1 MiB buffers stay
-- on the heap instead of being mapped and faulted in afresh on every call.

local TUNABLES = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456"

if not os.getenv("GLIBC_TUNABLES") then
  local function q(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
  end
  local interp = arg[-1] or "lua5.4"
  local cmd = "GLIBC_TUNABLES=" .. TUNABLES .. " " .. q(interp) .. " " .. q(arg[0])
  for i = 1, #arg do
    cmd = cmd .. " " .. q(arg[i])
  end
  local ok, how, code = os.execute(cmd)
  if how == "exit" then
    os.exit(code)
  end
  os.exit(ok and 0 or 1)
end

package.path = package.path .. ";/usr/share/lua/5.3/?.lua"

local lxshm = require("lxshm")
local cjson = require("cjson")
local mp = require("MessagePack")

-- The shared corpus: LXSHM_CORPUS, else ../shared/bench/corpus.lua, else a copy in bench/.
local function load_corpus()
  for _, path in ipairs({ os.getenv("LXSHM_CORPUS") or false, "../shared/bench/corpus.lua",
    "bench/corpus.lua" }) do
    local f = path and io.open(path, "r")
    if f then
      f:close()
      return dofile(path)
    end
  end
  error("corpus.lua not found: set LXSHM_CORPUS")
end

local corpus = load_corpus()
local REPS = tonumber(os.getenv("LXSHM_BENCH_REPS")) or 9
local BATCH = tonumber(os.getenv("LXSHM_BENCH_TIME")) or 0.1
local ONLY = os.getenv("LXSHM_BENCH_ONLY")

local codecs = {
  { name = "lxshm", encode = lxshm.encode, decode = lxshm.decode },
  { name = "cjson", encode = cjson.encode, decode = cjson.decode },
  { name = "msgpack", encode = mp.pack, decode = mp.unpack },
}

local function median(xs)
  local s = {}
  for i, x in ipairs(xs) do
    s[i] = x
  end
  table.sort(s)
  local n = #s
  if n % 2 == 1 then
    return s[(n + 1) // 2]
  end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end

local function minmax(xs)
  local lo, hi = math.huge, -math.huge
  for _, x in ipairs(xs) do
    lo, hi = math.min(lo, x), math.max(hi, x)
  end
  return lo, hi
end

local function fmt(x)
  if x >= 100 then
    return string.format("%.0f", x)
  elseif x >= 10 then
    return string.format("%.1f", x)
  end
  return string.format("%.2f", x)
end

local function figure(name, xs, unit)
  local lo, hi = minmax(xs)
  print(string.format("%s: %s %s  # min=%s max=%s", name, fmt(median(xs)), unit, fmt(lo), fmt(hi)))
  return median(xs)
end

-- n round trips of v through codec c; CPU seconds (os.clock: this machine is shared and noisy).
-- A codec with `op` instead of encode/decode runs op(v) alone (one-way figures, baselines).
local function run(c, v, n)
  collectgarbage("collect")
  if c.op then
    local op = c.op
    local t0 = os.clock()
    for _ = 1, n do
      op(v)
    end
    return os.clock() - t0
  end
  local enc, dec = c.encode, c.decode
  local t0 = os.clock()
  for _ = 1, n do
    dec(enc(v))
  end
  return os.clock() - t0
end

-- Round trips that fill about BATCH seconds.
local function calibrate(c, v)
  local n = 1
  while true do
    local t = run(c, v, n)
    if t >= BATCH / 4 then
      return math.max(1, math.floor(n * BATCH / t))
    end
    n = n * 4
  end
end

-- One-way lxshm figures, and for strings the cost of one copy into a new Lua string: a round
-- trip through any codec makes at least two (encode and decode each return a new string).
local function extras(item)
  local encoded = lxshm.encode(item.value)
  local x = {
    { name = "encode.lxshm", unit = "encodes/s", op = lxshm.encode, arg = item.value },
    { name = "decode.lxshm", unit = "decodes/s", op = lxshm.decode, arg = encoded },
  }
  if type(item.value) == "string" then
    x[#x + 1] = { name = "copy.string.sub", unit = "copies/s", arg = item.value,
      op = function(s)
        return s:sub(2)
      end }
  end
  return x
end

local summary = {}
print(string.format("# codec round trips (encode+decode), %d repetitions of ~%.2f s per codec,"
  .. " medians; GLIBC_TUNABLES=%s", REPS, BATCH, os.getenv("GLIBC_TUNABLES")))
for _, item in ipairs(corpus) do
  if not ONLY or ONLY == item.name then
    local v = item.value
    local sizes, n, rates = {}, {}, {}
    for _, c in ipairs(codecs) do
      sizes[c.name] = #c.encode(v)
      n[c.name] = calibrate(c, v)
      rates[c.name] = {}
    end
    local more = extras(item)
    for _, x in ipairs(more) do
      x.n, x.rates = calibrate(x, x.arg), {}
    end
    local vs_cjson, vs_mp = {}, {}
    for rep = 1, REPS do
      local r = {}
      for k = 0, #codecs - 1 do -- rotate the order every repetition
        local c = codecs[(rep + k - 1) % #codecs + 1]
        r[c.name] = n[c.name] / run(c, v, n[c.name])
        table.insert(rates[c.name], r[c.name])
      end
      vs_cjson[rep] = r.lxshm / r.cjson
      vs_mp[rep] = r.lxshm / r.msgpack
      for _, x in ipairs(more) do
        table.insert(x.rates, x.n / run(x, x.arg, x.n))
      end
    end
    local prefix = "codec." .. item.name
    local row = { name = item.name, sizes = sizes }
    for _, c in ipairs(codecs) do
      row[c.name] = figure(prefix .. ".roundtrip." .. c.name, rates[c.name], "roundtrips/s")
    end
    row.vs_cjson = figure(prefix .. ".ratio.lxshm/cjson", vs_cjson, "x")
    row.vs_mp = figure(prefix .. ".ratio.lxshm/msgpack", vs_mp, "x")
    for _, x in ipairs(more) do
      figure(prefix .. "." .. x.name, x.rates, x.unit)
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
