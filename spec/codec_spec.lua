-- The value codec as a user meets it: lxshm.encode / lxshm.decode (SPEC §6, doc/FORMAT.md).
-- Round trips of every kind of value, a seeded property test, refusals with their exact
-- messages and codes, and hostile bytes given to the decoder.
-- Runs on every runtime. Where numbers differ (Lua 5.3 and 5.4 have an integer subtype; 5.1,
-- 5.2 and LuaJIT only doubles) a test has one version per kind, named for it; the rules
-- themselves are in numbers_spec.lua.
local lxshm = require("lxshm")
local util = require("util")

local encode, decode = lxshm.encode, lxshm.decode
local hex, unhex = util.hex, util.unhex
local HAS_INT, RUNTIME = util.HAS_INT, util.RUNTIME
local NEG_ZERO = util.NEG_ZERO
-- The extremes of what the codec writes as an integer: math.maxinteger and math.mininteger on
-- 5.3 and 5.4, ±2^53 where numbers are doubles.
local MAX_INT, MIN_INT = util.MAX_INTEGER, util.MIN_INTEGER

after_each(util.cleanup)

local deep_equal = util.deep_equal

local function roundtrip(v)
  local s, msg, code = encode(v)
  assert(s, ("encode failed: %s (%s)"):format(tostring(msg), tostring(code)))
  local back, dmsg = decode(s)
  if back == nil and dmsg ~= nil then
    error("decode failed: " .. dmsg)
  end
  return back, s
end

local function assert_roundtrip(v)
  local back, s = roundtrip(v)
  assert.is_true(deep_equal(v, back), "round trip changed the value; bytes: " .. hex(s))
  return back
end

-- The double whose IEEE 754 bits are hi (the high 32) and lo, in plain arithmetic (string.unpack
-- is 5.3 and later). Every NaN comes out as the NaN 0/0 makes: "keeps NaN's bits" checks those.
local function double_from_bits(hi, lo)
  local sign = hi >= 2147483648 and -1 or 1
  local e = math.floor(hi / 1048576) % 2048
  local m = (hi % 1048576) * 2 ^ 32 + lo
  if e == 2047 then
    return m == 0 and sign / 0 or 0 / 0
  elseif e == 0 then
    return sign * (m * 2 ^ -1074) -- subnormal, or a zero that keeps its sign
  end
  return sign * ((2 ^ 52 + m) * 2 ^ (e - 1075))
end

-- Pure-Lua deterministic PRNG, so a failing case can be replayed from its seed: Park and
-- Miller's minimal standard generator, x = x * 48271 mod (2^31 - 1), whose products stay below
-- 2^47 and so are exact in integers and doubles alike: every runtime draws the same sequence.
local function prng(seed)
  local x = seed % 2147483646 + 1
  local r = {}
  local function step()
    x = x * 48271 % 2147483647
    return x
  end
  function r.int(lo, hi) -- inclusive, hi - lo < 2^30
    return lo + step() % (hi - lo + 1)
  end
  function r.u32()
    return step() % 65536 * 65536 + step() % 65536
  end
  -- Any integer the codec writes as one: all 64-bit integers on 5.3 and 5.4 (the literals are
  -- integers there, so this is integer arithmetic), any within ±2^53 on the others.
  function r.integer()
    if HAS_INT then
      return (r.u32() - 2147483648) * 4294967296 + r.u32()
    end
    return (r.u32() % 2097152 - 1048576) * 4294967296 + r.u32() -- hi in ±2^20: within ±2^52
  end
  function r.double() -- any 64 bits as a double: subnormals, infinities and NaNs included
    return double_from_bits(r.u32(), r.u32())
  end
  function r.chance(p)
    return r.int(0, 999) < p * 1000
  end
  return r
end

describe("lxshm codec", function()
  describe("round trips", function()
    it("keeps nil, booleans and numbers", function()
      for _, v in ipairs({ true, false, 0, 1, -1, 0.0, NEG_ZERO, 1.0, 1.5, -2.25, 0.1, 1e300,
        5e-324, 2 ^ 53, 2 ^ 63, -(2 ^ 63), 3.4028234663852886e38, 1e39, 1 / 0, -1 / 0 }) do
        assert_roundtrip(v)
      end
      assert.is_nil(roundtrip(nil))
    end)

    if HAS_INT then
      it("keeps the integer/float distinction (integer subtype: " .. RUNTIME .. ")", function()
        assert.equal("integer", math.type(roundtrip(7)))
        assert.equal("float", math.type(roundtrip(7.0)))
        assert.equal("ca40e00000", hex(encode(7.0)))
      end)
    else
      it("writes 7 and 7.0, one number here, as the integer 7 (doubles only: " .. RUNTIME .. ")",
        function()
          assert.equal("07", hex(encode(7)))
          assert.equal("07", hex(encode(tonumber("7.0"))))
          assert.equal(7, roundtrip(tonumber("7.0")))
        end)
    end

    -- On 5.1, 5.2 and LuaJIT the edges are ±2^53 rather than math.maxinteger/mininteger.
    it("keeps every integer size at its edges, writing each as an integer", function()
      local edges = { 0, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296, -1, -32,
        -33, -128, -129, -32768, -32769, -2147483648, -2147483649, MAX_INT, MIN_INT,
        MAX_INT - 1, MIN_INT + 1 }
      assert.equal(22, #edges)
      for _, i in ipairs(edges) do
        local bytes = encode(i)
        assert.is_true(bytes:byte(1) ~= 0xca and bytes:byte(1) ~= 0xcb, "written as a float")
        local back = decode(bytes)
        assert.is_true(util.is_integer(back))
        assert.equal(i, back)
      end
    end)

    it("keeps -0.0, infinities and NaN, written as floats", function()
      local z = roundtrip(NEG_ZERO)
      assert.equal(-1 / 0, 1 / z)
      assert.equal("ca80000000", hex(encode(NEG_ZERO)))
      assert.equal(1 / 0, roundtrip(1 / 0))
      assert.equal(-1 / 0, roundtrip(-1 / 0))
      local nan = roundtrip(0 / 0)
      assert.is_true(nan ~= nan)
      assert.equal(0xcb, encode(0 / 0):byte(1))
      if HAS_INT then
        assert.equal("float", math.type(z))
        assert.equal("float", math.type(nan))
      end
    end)

    local PAYLOAD_NAN = unhex("cb 7ff8000000000001") -- a quiet NaN with a payload
    if not util.LUAJIT then
      it("keeps NaN's bits", function()
        local nan = decode(PAYLOAD_NAN)
        assert.is_true(nan ~= nan)
        assert.equal(hex(PAYLOAD_NAN), hex(encode(nan)))
        assert.equal(hex(PAYLOAD_NAN), hex(encode(decode(encode(nan)))))
        local pack = rawget(string, "pack") -- 5.3 and later: the bits seen without the codec
        if pack then
          assert.equal(PAYLOAD_NAN:sub(2), pack(">d", nan))
        end
      end)
    else
      -- LuaJIT tags its values inside NaNs: any NaN handed to it through the C API becomes its
      -- one canonical NaN, so a payload cannot survive decoding there.
      it("reads every NaN as LuaJIT's canonical NaN, losing the payload (LuaJIT)", function()
        local nan = decode(PAYLOAD_NAN)
        assert.is_true(nan ~= nan)
        assert.equal("cbfff8000000000000", hex(encode(nan)))
        assert.equal("cbfff8000000000000", hex(encode(decode(unhex("cb 7ff0000000000001")))))
      end)
    end

    it("keeps strings 8-bit clean", function()
      local all = {}
      for b = 0, 255 do
        all[#all + 1] = string.char(b)
      end
      for _, s in ipairs({ "", "a", "hello\0world", table.concat(all), "\255\254", "héllo wörld",
        "日本語", unhex("eda080"), unhex("c080"), unhex("f4908080"), string.rep("x", 31),
        string.rep("x", 32), string.rep("é", 200), string.rep("\128", 256),
        string.rep("ab", 40000), string.rep("\0", 70000) }) do
        assert.equal(s, roundtrip(s))
      end
    end)

    it("keeps sequences, sparse arrays, mixed tables and empty tables", function()
      assert_roundtrip({})
      assert_roundtrip({ 1, 2, 3 })
      assert_roundtrip({ "a", { "b", { "c" } } })
      assert_roundtrip({ 1, 2, nil, 4 })
      assert_roundtrip({ [1] = "x", [3] = "y" })
      assert_roundtrip({ [2] = "only two" })
      assert_roundtrip({ [0] = "zero", "one" })
      assert_roundtrip({ 1, 2, x = 3, y = { 4 } })
      assert_roundtrip({ [-1] = 1, [MAX_INT] = 2, [MIN_INT] = 3 })
      local seq = {}
      for i = 1, 70000 do
        seq[i] = i
      end
      assert_roundtrip(seq)
      local back = roundtrip({ 10, 20, 30 })
      assert.equal(3, #back)
    end)

    it("keeps sequences whose elements sit in the hash part, writing them as arrays", function()
      local t = {}
      for i = 40, 1, -1 do
        t[i] = i * 2
      end
      local hashed = { [3] = "c", [1] = "a", [2] = "b" }
      assert_roundtrip(t)
      assert_roundtrip(hashed)
      assert.equal(0x93, encode(hashed):byte(1)) -- still written as an array
    end)

    it("keeps keys of every storable type", function()
      local k = { "a key table" }
      local v = {
        [1.5] = "float",
        [-0.25] = "negative float",
        [1 / 0] = "inf",
        [true] = "yes",
        [false] = "no",
        [k] = "table key",
        [""] = "empty string",
        ["\255"] = "binary key",
        [42] = "integer",
      }
      local back = assert_roundtrip(v)
      assert.equal("float", back[1.5])
      assert.equal("yes", back[true])
      assert.equal("inf", back[1 / 0])
    end)

    it("keeps a shared subtable shared", function()
      local shared = { hp = 10 }
      local back = assert_roundtrip({ x = shared, y = shared, list = { shared, shared } })
      assert.equal(back.x, back.y)
      assert.equal(back.x, back.list[1])
      assert.equal(back.list[1], back.list[2])
      back.x.hp = 11
      assert.equal(11, back.y.hp)
    end)

    it("keeps cycles", function()
      local t = { name = "root" }
      t.self = t
      local back = assert_roundtrip(t)
      assert.equal(back, back.self)
      assert.equal("root", back.self.self.name)

      local a, b = {}, {}
      a.next, b.next = b, a
      local ring = assert_roundtrip({ a, b })
      assert.equal(ring[1].next, ring[2])
      assert.equal(ring[2].next, ring[1])

      local nested = { level1 = { level2 = {} } }
      nested.level1.level2.up = nested.level1
      nested.level1.level2.top = nested
      local nb = assert_roundtrip(nested)
      assert.equal(nb.level1, nb.level1.level2.up)
      assert.equal(nb, nb.level1.level2.top)
    end)

    it("keeps sharing in values larger than 64 KiB and in strings that look like references",
      function()
        local s = { "shared" }
        local big = assert_roundtrip({ blob = string.rep("x", 70000), a = s, b = s })
        assert.equal(big.a, big.b)
        local lookalike = { unhex("d4 4c 00"), unhex("c7 01 4c 00"), { unhex("d6 4c") } }
        assert_roundtrip(lookalike)
        local t = { unhex("d4 4c 00") }
        t.self = t
        assert.equal(t[1], assert_roundtrip(t)[1])
      end)

    it("keeps a table used as a key and as a value the same table", function()
      local k = { id = 1 }
      local back = assert_roundtrip({ [k] = k, other = k })
      local key = next(back, nil)
      if type(key) ~= "table" then
        key = next(back, key)
      end
      assert.equal(back.other, key)
      assert.equal(back[key], key)
    end)

    it("keeps sharing decided before an abandoned array pass", function()
      -- {1, 2, x = ...}: the encoder tries an array first and falls back to a map; tables met
      -- in the abandoned pass must be numbered again, in the order the map meets them.
      local s = { "shared" }
      local t = { s, { s }, x = s, y = { s } }
      local back = assert_roundtrip(t)
      assert.equal(back[1], back.x)
      assert.equal(back[2][1], back.y[1])
    end)

    it("drops metatables and never calls metamethods", function()
      local called = false
      local mt = {
        __index = function()
          called = true
        end,
        __len = function()
          called = true
          return 99
        end,
        __pairs = function()
          called = true
          return next, {}, nil
        end,
      }
      local v = setmetatable({ 1, 2, a = setmetatable({}, mt) }, mt)
      local back = roundtrip(v)
      assert.is_false(called)
      assert.is_nil(getmetatable(back))
      assert.is_nil(getmetatable(back.a))
      assert.equal(2, #back)
    end)

    if HAS_INT then
      it("keeps math.type of integer and float keys (integer subtype: " .. RUNTIME .. ")",
        function()
          local back = roundtrip({ [1] = "a", [2.5] = "b" })
          for k in pairs(back) do
            assert.equal(k == 1 and "integer" or "float", math.type(k))
          end
        end)
    else
      it("writes an integral key as an integer, any other as a float (doubles only: "
        .. RUNTIME .. ")", function()
          assert.equal("81fda163", hex(encode({ [-3] = "c" })))
          assert.equal("81ca40200000a162", hex(encode({ [2.5] = "b" })))
          local back = roundtrip({ [1] = "a", [2.5] = "b" })
          assert.same({ [1] = "a", [2.5] = "b" }, back)
        end)
    end

    it("round-trips the shared benchmark corpus", function()
      local corpus = util.corpus()
      for _, item in ipairs(corpus) do
        assert_roundtrip(item.value)
      end
    end)

    -- bench/corpus.lua draws its numbers with 5.3's integers; older runtimes load it through
    -- bench/load_corpus.lua, which computes the same generator on limbs. Both must give the
    -- same numbers: checked against values printed by Lua 5.4, and, where the file itself
    -- loads, against it.
    it("loads the same corpus on every runtime", function()
      local load_corpus = dofile("bench/load_corpus.lua")
      local portable = load_corpus("bench/corpus.lua", true)
      local function fingerprint(c)
        return ("%.17g %.17g %.17g %.17g"):format(c[1].value.x, c[3].value[1],
          c[3].value[10000], c[2].value.entities[50].pos[2])
      end
      assert.equal("-55.767352115958943 -147.37128859420932 -825.80397797625142 "
        .. "-458.06371191909125", fingerprint(portable))
      assert.equal(1048576, #portable[4].value)
      if HAS_INT then
        assert.is_true(deep_equal(dofile("bench/corpus.lua"), portable))
      else
        assert.equal(1234567890123456789, portable[5].value.limits.uid) -- the nearest double
      end
    end)

    it("accepts nesting up to the limit of 200 tables", function()
      local root = {}
      local t = root
      for _ = 2, 200 do
        t[1] = {}
        t = t[1]
      end
      local back = assert_roundtrip(root)
      local depth = 0
      while back do
        depth, back = depth + 1, back[1]
      end
      assert.equal(200, depth)
    end)
  end)

  describe("property test", function()
    it("decode(encode(v)) equals v for a few thousand random values", function()
      local seed = tonumber(os.getenv("LXSHM_SEED")) or 20240601
      local r = prng(seed)

      local function rstring()
        local kind = r.int(0, 5)
        local n = r.chance(0.05) and r.int(32, 300) or r.int(0, 12)
        local b = {}
        if kind == 0 then -- any bytes
          for i = 1, n do
            b[i] = string.char(r.int(0, 255))
          end
        elseif kind == 1 then -- UTF-8 text
          for i = 1, n do
            b[i] = util.utf8_char(({ r.int(32, 126), r.int(0x80, 0x7ff), r.int(0x800, 0xd7ff),
              r.int(0x10000, 0x10ffff) })[r.int(1, 4)])
          end
        else -- identifiers
          for i = 1, n do
            b[i] = string.char(r.int(97, 122))
          end
        end
        return table.concat(b)
      end

      local function rfloat()
        local k = r.int(0, 9)
        if k == 0 then
          return ({ 0.0, NEG_ZERO, 1 / 0, -1 / 0, 0 / 0, 0.5, 1e308, 5e-324 })[r.int(1, 8)]
        elseif k <= 3 then
          return r.int(-1000000, 1000000) / 64 + 0.0 -- exact in float32 often
        end
        return r.double() -- any bits, NaNs included
      end

      local function rint()
        local k = r.int(0, 5)
        if k == 0 then
          return ({ 0, -1, 127, 128, -32, -33, 255, 256, 65535, 65536, MAX_INT, MIN_INT,
            4294967295, 4294967296 })[r.int(1, 14)]
        elseif k <= 2 then
          return r.int(-300, 300)
        end
        return r.integer()
      end

      local pool -- tables made so far for this value: reused as shared refs and cycles

      local function rkey(depth)
        local k = r.int(0, 9)
        if k <= 4 then
          return rstring()
        elseif k <= 6 then
          return rint()
        elseif k == 7 then
          local f = rfloat()
          return f == f and f or 1.5
        elseif k == 8 then
          return r.chance(0.5)
        elseif #pool > 0 and r.chance(0.5) then
          return pool[r.int(1, #pool)]
        end
        return depth < 3 and { rstring() } or "leaf"
      end

      local rvalue
      local function rtable(depth)
        local t = {}
        pool[#pool + 1] = t
        local shape = r.int(0, 3)
        local n = r.int(0, 8)
        if shape == 0 then -- sequence
          for i = 1, n do
            t[i] = rvalue(depth + 1)
          end
          for i = 1, n do
            if t[i] == nil then
              t[i] = i
            end
          end
        elseif shape == 1 then -- sparse
          for _ = 1, n do
            t[r.int(1, 20)] = rvalue(depth + 1)
          end
        elseif shape == 2 then -- mixed
          for i = 1, n do
            t[i] = rvalue(depth + 1)
          end
          t[rstring()] = rvalue(depth + 1)
        else -- map with any keys
          for _ = 1, n do
            local k = rkey(depth)
            if k ~= nil then
              t[k] = rvalue(depth + 1)
            end
          end
        end
        return t
      end

      rvalue = function(depth)
        local k = r.int(0, 11)
        if k == 0 then
          return nil
        elseif k == 1 then
          return r.chance(0.5)
        elseif k <= 3 then
          return rint()
        elseif k <= 5 then
          return rfloat()
        elseif k <= 7 then
          return rstring()
        elseif k == 8 and #pool > 0 then
          return pool[r.int(1, #pool)] -- a shared table, or a cycle when it is an ancestor
        elseif depth < 6 then
          return rtable(depth)
        end
        return rint()
      end

      for case = 1, 3000 do
        pool = {}
        local v = rvalue(0)
        local s, msg = encode(v)
        local back = s and decode(s)
        if not s or not deep_equal(v, back) then
          error(("case %d with LXSHM_SEED=%d failed: %s"):format(case, seed,
            s and ("bytes " .. hex(s)) or msg))
        end
      end
    end)
  end)

  describe("encoded form", function()
    -- The bytes other-language peers read (doc/FORMAT.md).
    local cases = {
      { nil, "c0" }, { false, "c2" }, { true, "c3" },
      { 0, "00" }, { 127, "7f" }, { 128, "cc80" }, { 256, "cd0100" }, { 65536, "ce00010000" },
      { 4294967296, "cf0000000100000000" }, { -1, "ff" }, { -32, "e0" }, { -33, "d0df" },
      { -129, "d1ff7f" }, { -32769, "d2ffff7fff" },
      { 1.5, "ca3fc00000" }, { NEG_ZERO, "ca80000000" },
      { 1 / 0, "ca7f800000" }, { 0.1, "cb3fb999999999999a" },
      { "", "a0" }, { "abc", "a3616263" }, { "\255", "c401ff" },
      { string.rep("a", 32), "d920" .. string.rep("61", 32) },
      { {}, "80" }, { { 1, 2 }, "920102" }, { { a = 1 }, "81a16101" },
    }
    if HAS_INT then -- integer subtype: the 64-bit extremes; an integral float stays a float
      cases[#cases + 1] = { math.mininteger, "d38000000000000000" }
      cases[#cases + 1] = { math.maxinteger, "cf7fffffffffffffff" }
      cases[#cases + 1] = { 0.0, "ca00000000" }
    else -- doubles only: integral numbers within ±2^53 are integers, beyond them floats
      cases[#cases + 1] = { -2 ^ 53, "d3ffe0000000000000" }
      cases[#cases + 1] = { 2 ^ 53, "cf0020000000000000" }
      cases[#cases + 1] = { tonumber("0.0"), "00" }
      cases[#cases + 1] = { 2 ^ 63, "ca5f000000" }
    end
    for _, c in ipairs(cases) do
      it(("writes %s as %s"):format(tostring(c[1]), c[2]:sub(1, 20)), function()
        assert.equal(c[2], hex(encode(c[1])))
      end)
    end

    it("writes valid UTF-8 as str and any other bytes as bin", function()
      local text = string.rep("héllo wörld 日本語 𝄞 ", 10)
      local strings = {
        { "日本語", 0xa9 }, { "𝄞", 0xa4 },
        { unhex("f48fbfbf"), 0xa4 }, { unhex("ed9fbf"), 0xa3 }, -- U+10FFFF, U+D7FF
        { text, 0xda }, { string.rep("a", 100) .. "é", 0xd9 },
        { unhex("eda080"), 0xc4 }, -- a surrogate
        { unhex("c080"), 0xc4 }, { unhex("e08080"), 0xc4 }, { unhex("f0808080"), 0xc4 }, -- overlong
        { unhex("f4908080"), 0xc4 }, -- above U+10FFFF
        { unhex("e697"), 0xc4 }, -- cut short
        { unhex("80"), 0xc4 }, { unhex("fe"), 0xc4 },
        { text .. "\255", 0xc5 }, { text:sub(1, 46), 0xd9 }, { text:sub(1, 45), 0xc4 },
        { string.rep("a", 70) .. "\128" .. string.rep("a", 70), 0xc4 },
      }
      for i, c in ipairs(strings) do
        local bytes = encode(c[1])
        assert.equal(c[2], bytes:byte(1), "string " .. i)
        assert.equal(c[1], decode(bytes))
      end
    end)

    -- lxshm.encode writes a string of 64 KiB or more by itself along another path (a header
    -- joined to it, one copy): its bytes must be those of the same string inside a table.
    it("writes a big string alone as it writes it inside a table", function()
      local text = string.rep("héllo 日本語 ", 8192) -- valid UTF-8, above 64 KiB
      local big = {
        { string.rep("a", 65535), unhex("da ffff") },
        { string.rep("a", 65536), unhex("db 00010000") },
        { string.rep("\255", 65536), unhex("c6 00010000") }, { text, unhex("db") },
        { text .. "\192", unhex("c6") },
        { string.rep("\0", 1048576), unhex("db 00100000") }, -- NUL is ASCII
      }
      for i, c in ipairs(big) do
        local bytes = encode(c[1])
        assert.equal(c[2], bytes:sub(1, #c[2]), "string " .. i)
        assert.equal(unhex("91") .. bytes, encode({ c[1] }), "string " .. i)
        assert.equal(#c[1], #bytes - (#c[1] < 65536 and 3 or 5), "string " .. i)
        assert.equal(c[1], decode(bytes), "string " .. i)
      end
    end)

    it("writes a table met again as ext type 76 holding its number", function()
      local t = {}
      t[1] = t
      assert.equal("91d44c00", hex(encode(t)))
      local s = { 0 }
      assert.equal("92910091d44c01", hex(encode({ s, { s } })))
    end)

    it("writes large maps and arrays with 16- and 32-bit counts", function()
      local m, a = {}, {}
      for i = 1, 20 do
        m["k" .. i] = i
        a[i] = i
      end
      assert.equal("de0014", hex(encode(m):sub(1, 3)))
      assert.equal("dc0014", hex(encode(a):sub(1, 3)))
      local big = {}
      for i = 1, 70000 do
        big[-i] = 0
      end
      assert.equal("df00011170", hex(encode(big):sub(1, 5)))
      local seq = {}
      for i = 1, 70000 do
        seq[i] = i
      end
      assert.equal("dd00011170", hex(encode(seq):sub(1, 5)))
    end)
  end)

  describe("refusals", function()
    local co = coroutine.create(function() end)
    local ud = io.stdout
    local cases = {
      { print, "value is a function" },
      { { player = { on_hit = print } }, "value at .player.on_hit is a function" },
      { { 1, 2, { 3, co } }, "value at [3][2] is a thread" },
      { { f = io.stdout }, "value at .f is a userdata" },
      { { ["a b"] = { [7] = ud } }, 'value at ["a b"][7] is a userdata' },
      { { [1.5] = print }, "value at [1.5] is a function" },
      { { [-3] = print }, "value at [-3] is a function" },
      { { [true] = print }, "value at [true] is a function" },
      { { [{}] = print }, "value at [table] is a function" },
      { { ["end"] = print }, 'value at ["end"] is a function' },
      { { ["x\n\"y"] = print }, 'value at ["x\\n\\"y"] is a function' },
      { { ["\255"] = print }, 'value at ["\\xFF"] is a function' },
      { { [string.rep("k", 40)] = print },
        'value at ["' .. string.rep("k", 32) .. '..."] is a function' },
      { { [string.rep("\255", 40)] = print },
        'value at ["' .. string.rep("\\xFF", 12) .. '..."] is a function' },
      { { [string.rep("é", 40)] = print },
        'value at ["' .. string.rep("é", 16) .. '..."] is a function' },
      { { [print] = 1 }, "key is a function" },
      { { a = { [co] = true } }, "key at .a is a thread" },
      { { a = { [{ f = print }] = 1 } }, "value at .a<key>.f is a function" },
    }
    for _, c in ipairs(cases) do
      it("refuses: " .. c[2], function()
        local s, msg, code = encode(c[1])
        assert.is_nil(s)
        assert.equal("encode: " .. c[2], msg)
        assert.equal(lxshm.UNSUPPORTED, code)
      end)
    end

    it("refuses a light userdata", function()
      local light = util.proc.lightuserdata() -- Lua 5.1 code cannot make one itself
      assert.equal("userdata", type(light))
      local s, msg, code = encode({ x = light })
      assert.is_nil(s)
      assert.equal("encode: value at .x is a light userdata", msg)
      assert.equal(lxshm.UNSUPPORTED, code)
    end)

    it("refuses nesting past 200 tables, naming the limit", function()
      local root = {}
      local t = root
      for _ = 2, 201 do
        t[1] = {}
        t = t[1]
      end
      local s, msg, code = encode(root)
      assert.is_nil(s)
      assert.equal(lxshm.UNSUPPORTED, code)
      assert.matches("^encode: value at %[1%]%[1%][%[%]1]*%.%.%.[%[%]1]* exceeds the nesting limit"
        .. " of 200 tables$", msg)
      assert.is_true(#msg < 192)
    end)

    it("counts a table used as a key as one level deeper", function()
      local inner = {}
      local t = inner
      for _ = 2, 199 do
        t[1] = {}
        t = t[1]
      end
      assert.is_string(encode({ [inner] = 1 })) -- 1 + 199 = 200 levels
      t[1] = {}
      local s, msg, code = encode({ [inner] = 1 })
      assert.is_nil(s)
      assert.equal(lxshm.UNSUPPORTED, code)
      assert.matches("^encode: value at <key>%[1%].* exceeds the nesting limit of 200 tables$", msg)
    end)

    it("counts a cycle back to the top of a 200-deep chain as no level at all", function()
      local root = {}
      local t = root
      for _ = 2, 200 do
        t.next = {}
        t = t.next
      end
      t.next = root -- a cycle is a back-reference, not one more level
      local back = assert_roundtrip(root)
      local n, p = 0, back
      repeat
        n, p = n + 1, p.next
      until p == back
      assert.equal(200, n)
    end)

    it("refuses values over a segment's capacity with INVALID_SIZE, keeping the old one", function()
      local seg = util.segment(8, "codec")
      assert.is_truthy(seg:put({ 1, 2, 3, 4, 5, 6, 7 })) -- 8 bytes: fits exactly
      local ok, msg, code = seg:put({ 1, 2, 3, 4, 5, 6, 7, 8 }) -- 9 bytes
      assert.is_nil(ok)
      assert.equal(lxshm.INVALID_SIZE, code)
      assert.matches("8 bytes", msg)
      assert.same({ 1, 2, 3, 4, 5, 6, 7 }, seg:get())
      ok, msg, code = seg:put(string.rep("x", 1000000))
      assert.is_nil(ok)
      assert.matches("8 bytes", msg)
      assert.equal(lxshm.INVALID_SIZE, code)
    end)

    it("leaves the encoder usable after a refusal", function()
      assert.is_nil(encode({ a = { b = print } }))
      assert.equal("81a16101", hex(encode({ a = 1 })))
      local shared = {}
      assert.is_nil(encode({ shared, shared, print }))
      local back = assert_roundtrip({ shared, shared })
      assert.equal(back[1], back[2])
    end)
  end)

  describe("decoding foreign or damaged bytes", function()
    local function corrupt(bytes, pattern)
      local v, msg, code = decode(bytes)
      assert.is_nil(v)
      assert.equal(lxshm.CORRUPT, code)
      assert.is_string(msg)
      if pattern then
        assert.matches(pattern, msg)
      end
      return msg
    end

    it("accepts every MessagePack type Lua can hold", function()
      -- math.maxinteger's and math.mininteger's bytes read as themselves on 5.3 and 5.4, as the
      -- nearest doubles, 2^63 and -2^63, on 5.1, 5.2 and LuaJIT.
      local max64 = rawget(math, "maxinteger") or 2 ^ 63
      local min64 = rawget(math, "mininteger") or -2 ^ 63
      local cases = {
        { "c0", nil }, { "c2", false }, { "c3", true },
        { "7f", 127 }, { "e0", -32 }, { "cc ff", 255 }, { "cd ffff", 65535 },
        { "ce ffffffff", 4294967295 }, { "cf 7fffffffffffffff", max64 },
        { "d0 80", -128 }, { "d1 8000", -32768 }, { "d2 80000000", -2147483648 },
        { "d3 8000000000000000", min64 }, { "d3 ffffffffffffffff", -1 },
        { "d0 7f", 127 }, { "cf 0000000000000001", 1 },
        { "ca 3fc00000", 1.5 }, { "cb 3ff8000000000000", 1.5 },
        { "a3 616263", "abc" }, { "d9 03 616263", "abc" }, { "da 0003 616263", "abc" },
        { "db 00000003 616263", "abc" }, { "c4 02 00ff", "\000\255" },
        { "c5 0002 00ff", "\000\255" }, { "c6 00000002 00ff", "\000\255" },
        { "a2 ff00", "\255\000" }, -- str bytes are not checked: Lua strings are bytes
        { "93 01 02 03", { 1, 2, 3 } }, { "dc 0002 01 02", { 1, 2 } },
        { "dd 00000002 01 02", { 1, 2 } }, { "90", {} }, { "80", {} },
        { "82 01 a1 61 a1 62 c3", { "a", b = true } }, { "de 0001 01 02", { 2 } },
        { "df 00000001 01 02", { 2 } },
        { "92 c0 01", { nil, 1 } }, -- nil in an array leaves a hole
        { "81 a1 61 c0", {} }, -- a nil value leaves no key
        { "82 a1 61 01 a1 61 02", { a = 2 } }, -- a repeated key: the last one wins
        { "81 cb 3ff0000000000000 a1 78", { "x" } }, -- float key 1.0 is integer key 1
        { "81 91 01 02", nil }, -- a table as a key: checked below
      }
      for _, c in ipairs(cases) do
        local v = decode(unhex(c[1]))
        if c[1] == "81 91 01 02" then
          local k, val = next(v)
          assert.same({ 1 }, k)
          assert.equal(2, val)
        else
          assert.is_true(deep_equal(c[2], v), "decoding " .. c[1])
        end
      end
      if HAS_INT then
        assert.equal("float", math.type(decode(unhex("ca 00000000"))))
        assert.equal("integer", math.type(next(decode(unhex("81 cb 3ff0000000000000 01")))))
      else -- doubles only: a float 0.0 is the number 0, a key 1.0 the key 1
        assert.equal(0, decode(unhex("ca 00000000")))
        assert.equal(1, next(decode(unhex("81 cb 3ff0000000000000 01"))))
      end
    end)

    it("resolves back-references in every ext form", function()
      for _, h in ipairs({ "91 d4 4c 00", "91 d5 4c 0000", "91 d6 4c 00000000",
        "91 d7 4c 0000000000000000", "91 c7 01 4c 00", "91 c8 0001 4c 00",
        "91 c9 00000001 4c 00" }) do
        local t = decode(unhex(h))
        assert.equal(t, t[1], h)
      end
      local t = decode(unhex("93 90 d4 4c 01 91 d4 4c 01"))
      assert.equal(t[1], t[2])
      assert.equal(t[1], t[3][1])
    end)

    it("refuses back-references to tables not yet started, too wide or cut short", function()
      corrupt(unhex("d4 4c 00"),
        "^decode: back%-reference at offset 0 to table 0, which has not started$")
      corrupt(unhex("92 d4 4c 01 90"), "offset 1 to table 1")
      corrupt(unhex("91 d6 4c ffffffff"), "table 4294967295")
      corrupt(unhex("91 d8 4c 00000000000000000000000000000000"), "16%-byte payload")
      corrupt(unhex("91 d4 4c"), "truncated")
    end)

    it("refuses unknown ext types, the timestamp included", function()
      corrupt(unhex("d4 01 00"), "^decode: unsupported ext type 1 at offset 0$")
      corrupt(unhex("d6 ff 00000000"),
        "^decode: unsupported ext type %-1 %(timestamp%) at offset 0$")
      corrupt(unhex("91 c7 00 05"), "ext type 5 at offset 1")
    end)

    if HAS_INT then
      it("refuses integers above math.maxinteger (integer subtype: " .. RUNTIME .. ")", function()
        corrupt(unhex("cf ffffffffffffffff"),
          "^decode: integer 18446744073709551615 at offset 0 is above math.maxinteger$")
        corrupt(unhex("cf 8000000000000000"), "9223372036854775808")
      end)
    else
      it("reads integers above 2^63 - 1 as the nearest double (doubles only: " .. RUNTIME .. ")",
        function()
          assert.equal(2 ^ 64, decode(unhex("cf ffffffffffffffff")))
          assert.equal(2 ^ 63, decode(unhex("cf 8000000000000000")))
        end)
    end

    it("refuses nil and NaN map keys", function()
      corrupt(unhex("81 c0 01"), "^decode: nil map key at offset 1$")
      corrupt(unhex("81 cb 7ff8000000000000 01"), "^decode: NaN map key at offset 1$")
      corrupt(unhex("92 00 81 ca 7fc00000 01"), "^decode: NaN map key at offset 3$")
    end)

    it("refuses the never-used type byte 0xc1", function()
      corrupt(unhex("c1"), "^decode: invalid type byte 0xc1 at offset 0$")
    end)

    it("refuses trailing bytes and empty input", function()
      corrupt(unhex("01 02"), "^decode: trailing bytes: the value ends at offset 1 of 2$")
      corrupt(unhex("90 90"), "trailing")
      corrupt("", "^decode: truncated: value expected at offset 0$")
    end)

    it("refuses every truncation of valid encodings", function()
      local t = { 1, "two", 3.5, { x = true, y = { -1000000, "\255\254" } } }
      t.self = t
      local samples = { encode(t), encode(MAX_INT), encode(0.1),
        encode(string.rep("z", 300)),
        encode({ [1.5] = { [true] = "x" } }) }
      local corpus = util.corpus()
      samples[#samples + 1] = encode(corpus[1].value)
      samples[#samples + 1] = encode(corpus[5].value)
      for _, s in ipairs(samples) do
        for n = 0, #s - 1 do
          local msg = corrupt(s:sub(1, n), "^decode: ")
          assert.is_truthy(msg:find("truncated", 1, true) or msg:find(" claims ", 1, true), msg)
        end
      end
    end)

    it("never fails other than with CORRUPT on any one-byte change", function()
      -- Every byte of a small encoding replaced by each of the 256 values; every byte of the
      -- config item by each type boundary and each one-bit flip (and there, to stay fast, the
      -- result is only re-encoded and decoded, not compared).
      local t = { 1, -2, "three", 4.5, { x = true, [false] = { 1e300, "\255" } } }
      t.self = t
      t[6] = t[5]
      local boundaries = { 0x00, 0x01, 0x0f, 0x10, 0x7f, 0x80, 0x81, 0x8f, 0x90, 0x91, 0x9f, 0xa0,
        0xa1, 0xbf, 0xe0, 0xff }
      for b = 0xc0, 0xdf do
        boundaries[#boundaries + 1] = b
      end
      local samples = {
        { bytes = encode(t), compare = true, values = function()
          local all = {}
          for b = 0, 255 do
            all[#all + 1] = b
          end
          return all
        end },
        { bytes = encode(util.corpus()[5].value), values = function(old)
          local v = { util.unpack(boundaries) }
          for _, bit in ipairs({ 1, 2, 4, 8, 16, 32, 64, 128 }) do -- old with that bit flipped
            v[#v + 1] = math.floor(old / bit) % 2 == 1 and old - bit or old + bit
          end
          return v
        end },
      }
      local decoded, refused = 0, 0
      for _, sample in ipairs(samples) do
        local s = sample.bytes
        for i = 1, #s do
          local pre, post = s:sub(1, i - 1), s:sub(i + 1)
          for _, b in ipairs(sample.values(s:byte(i))) do
            local bytes = pre .. string.char(b) .. post
            local v, msg, code = decode(bytes)
            if v == nil and msg ~= nil then
              if code ~= lxshm.CORRUPT then
                error(("byte %d set to %d: code %s, %s"):format(i, b, tostring(code), msg))
              end
              refused = refused + 1
            else
              -- what decodes must encode and decode again (to the same shape, for the small one)
              local again, err = decode(assert(encode(v)))
              if (again == nil and err) or (sample.compare and not deep_equal(v, again)) then
                error(("byte %d set to %d: re-encoding changed the value"):format(i, b))
              end
              decoded = decoded + 1
            end
          end
        end
      end
      assert.is_true(decoded > 1000 and refused > 1000, ("%d decoded, %d refused"):format(
        decoded, refused))
    end)

    it("refuses forged lengths and counts without allocating for them", function()
      local forged = {
        { "dd ffffffff",
          "^decode: array at offset 0 claims 4294967295 elements, only 0 bytes left$" },
        { "df ffffffff 01", "map at offset 0 claims 4294967295 pairs" },
        { "dc ffff 01", "claims 65535 elements" },
        { "de ffff", "claims 65535 pairs" },
        { "db ffffffff",
          "^decode: truncated: str32 at offset 0 needs 4294967295 more bytes, 0 left$" },
        { "c6 ffffffff 00", "bin32 at offset 0 needs 4294967295" },
        { "c9 ffffffff 4c", "ext at offset 0" },
        { "91 da ffff", "str16 at offset 1" },
      }
      for _, f in ipairs(forged) do
        corrupt(unhex(f[1]), f[2])
      end
      -- nested forged counts that each fit the bytes left must not multiply an allocation
      local inner = string.rep(unhex("dd 0000ff00"), 100) -- 100 arrays of 65280 elements
      local bytes = inner .. string.rep(unhex("c0"), 65536)
      collectgarbage("collect")
      collectgarbage("stop")
      local before = collectgarbage("count")
      corrupt(bytes, "truncated")
      local grew = collectgarbage("count") - before
      collectgarbage("restart")
      assert.is_true(grew < 8 * 1024, ("decode allocated %.0f KiB"):format(grew))
    end)

    it("refuses nesting bombs past the limit of 200 tables, accepting 200", function()
      corrupt(string.rep(unhex("91"), 100000), "^decode: table at offset 200 is nested deeper than"
        .. " the limit of 200 tables$")
      corrupt(string.rep(unhex("81 01"), 100000), "nested deeper")
      corrupt(string.rep(unhex("81"), 100000), "nested deeper")
      assert.is_table(decode(string.rep(unhex("91"), 200) .. unhex("c0")))
      corrupt(string.rep(unhex("91"), 201) .. unhex("c0"), "offset 200")
    end)

    it("raises for a non-string argument", function()
      assert.has_error(function()
        decode({})
      end, "bad argument #1 to 'decode' (string expected, got table)")
      assert.has_error(function()
        decode(nil)
      end, "bad argument #1 to 'decode' (string expected, got nil)")
      assert.has_error(function()
        decode(12)
      end, "bad argument #1 to 'decode' (string expected, got number)")
    end)
  end)

  describe("finalizers", function()
    -- Lua 5.4's generational collector runs finalizers at other moments than the incremental
    -- one, which is the only collector of 5.1, 5.3 and LuaJIT (5.2's generational mode was
    -- experimental): 5.4 runs the loop under the generational one, the others under theirs.
    local GENERATIONAL = _VERSION == "Lua 5.4"
    local collector = GENERATIONAL and "the generational collector (Lua 5.4)"
      or ("the incremental collector (" .. RUNTIME .. ")")

    it("may encode and decode while another encoding or decoding runs, under " .. collector,
      function()
        -- Objects whose __gc encode and decode with the module's shared encoder die while the
        -- loop below encodes and decodes: results must stay exact on both sides. (Tables have
        -- __gc from 5.2 on; on 5.1 and LuaJIT util.finalized makes a userdata instead.)
        local value = { list = { 1, 2.5, "three" }, nested = { a = { b = { c = true } } } }
        value.shared1 = value.list
        value.shared2 = value.list
        local expected = encode(value)
        local fin_ok, fin_runs = true, 0
        local function finalizer(payload)
          return function()
            fin_runs = fin_runs + 1
            local s = encode(payload)
            local back = s and decode(s)
            if not (back and deep_equal(payload, back)) then
              fin_ok = false
            end
          end
        end
        if GENERATIONAL then
          collectgarbage("generational")
        end
        local during
        for i = 1, 3000 do
          util.finalized(finalizer({ i, { tostring(i) }, [i + 0.5] = { i } }))
          local s = encode(value)
          if s ~= expected then
            error("outer encode corrupted at iteration " .. i)
          end
          local back = decode(s)
          assert.is_true(back.shared1 == back.shared2 and back.nested.a.b.c)
        end
        during = fin_runs
        collectgarbage("collect")
        if GENERATIONAL then
          collectgarbage("incremental")
        end
        assert.is_true(during > 100, "finalizers ran during the loop: " .. during)
        assert.equal(3000, fin_runs)
        assert.is_true(fin_ok)
      end)
  end)
end)
