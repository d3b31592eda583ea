-- Numbers through lxshm.encode / lxshm.decode on whatever runtime runs this file (SPEC §6, §11;
-- doc/FORMAT.md, "Lua runtimes"). Lua 5.3 and 5.4 keep math.type; Lua 5.1, 5.2 and LuaJIT have
-- doubles only: an integral number within ±2^53 is written as an integer, any other as a float,
-- and an integer read back that a double cannot hold comes back as the nearest double.
-- Each runtime runs the assertions of its own kind; the test names say which ran.
-- Written in Lua 5.1 syntax so that every runtime can load it.
local lxshm = require("lxshm")

local encode, decode = lxshm.encode, lxshm.decode
local jit = rawget(_G, "jit") -- LuaJIT's module, nil elsewhere
local HAS_INT = math.type ~= nil
local RUNTIME = type(jit) == "table" and jit.version or _VERSION
local KIND = HAS_INT and "with an integer subtype" or "without an integer subtype"

local function hex(s)
  return (s:gsub(".", function(c)
    return string.format("%02x", c:byte())
  end))
end

local function unhex(h)
  return (h:gsub("%s", ""):gsub("..", function(b)
    return string.char(tonumber(b, 16))
  end))
end

-- Numbers from text, so that each runtime reads the same source its own way: tonumber("3") is
-- an integer on 5.3+, tonumber("3.0") a float; on 5.1 both are the double 3. (A -0.0 literal
-- is unsafe on 5.1: the compiler may merge it with a 0 constant of the same function.)
local N = tonumber

-- Same value and, where there is one, same math.type; NaN equals NaN; -0.0 differs from 0.
local function same(a, b)
  if type(a) ~= "number" or type(b) ~= "number" then
    return false
  end
  if HAS_INT and math.type(a) ~= math.type(b) then
    return false
  end
  if a ~= a then
    return b ~= b
  end
  if a == 0 and b == 0 then
    return 1 / a == 1 / b
  end
  return a == b
end

local function describe_number(x)
  return ("%.17g (%s)"):format(x, HAS_INT and math.type(x) or type(x))
end

local function assert_same(want, got, what)
  assert(same(want, got), ("%s: got %s, want %s"):format(what, type(got) == "number"
    and describe_number(got) or tostring(got), describe_number(want)))
end

local function assert_bytes(v, want, what)
  assert.equal(want:gsub(" ", ""), hex(assert(encode(v))), what)
end

describe("numbers on " .. RUNTIME .. " (" .. KIND .. ")", function()
  it("knows which kind of runtime it runs on", function()
    if HAS_INT then
      assert.equal("integer", math.type(N("3")))
      assert.equal("float", math.type(N("3.0")))
    else
      assert.is_true(type(jit) == "table" or _VERSION == "Lua 5.1" or _VERSION == "Lua 5.2",
        "no math.type on " .. _VERSION)
    end
  end)

  -- What each kind writes: { number as text, bytes on 5.3/5.4, bytes on 5.1/5.2/LuaJIT }.
  local written = {
    { "0", "00", "00" },
    { "0.0", "ca 00000000", "00" },
    { "-0.0", "ca 80000000", "ca 80000000" },
    { "3", "03", "03" },
    { "3.0", "ca 40400000", "03" },
    { "-1.0", "ca bf800000", "ff" },
    { "300.0", "ca 43960000", "cd 012c" },
    { "1.5", "ca 3fc00000", "ca 3fc00000" },
    { "0.1", "cb 3fb999999999999a", "cb 3fb999999999999a" },
    { "-2147483649", "d3 ffffffff7fffffff", "d3 ffffffff7fffffff" },
    { "4294967296", "cf 0000000100000000", "cf 0000000100000000" },
    { "9007199254740992", "cf 0020000000000000", "cf 0020000000000000" },
    { "-9007199254740992.0", "ca da000000", "d3 ffe0000000000000" },
    { "9007199254740993", "cf 0020000000000001", "cf 0020000000000000" },
    { "9007199254740994", "cf 0020000000000002", "cb 4340000000000001" },
    { "1152921504606846976.0", "ca 5d800000", "ca 5d800000" },
    { "9223372036854775807", "cf 7fffffffffffffff", "ca 5f000000" },
    { "1e300", "cb 7e37e43c8800759c", "cb 7e37e43c8800759c" },
  }

  -- What each kind reads: { bytes, value on 5.3/5.4 (nil: refused), value on 5.1/5.2/LuaJIT }.
  local read = {
    { "ca 40400000", "3.0", "3" },
    { "cb 4008000000000000", "3.0", "3" },
    { "03", "3", "3" },
    { "ca 80000000", "-0.0", "-0.0" },
    { "cf 0020000000000001", "9007199254740993", "9007199254740992" },
    { "cf 0020000000000003", "9007199254740995", "9007199254740996" },
    { "d3 ffdfffffffffffff", "-9007199254740993", "-9007199254740992" },
    { "cf 7fffffffffffffff", "9223372036854775807", "9223372036854775808" },
    { "d3 8000000000000000", "-9223372036854775808", "-9223372036854775808" },
    { "cf 8000000000000000", nil, "9223372036854775808" },
    { "cf ffffffffffffffff", nil, "18446744073709551616" },
    { "d3 ffffffffffffffff", "-1", "-1" },
    { "d0 80", "-128", "-128" },
    { "ce ffffffff", "4294967295", "4294967295" },
  }

  it("writes each number as doc/FORMAT.md says for " .. KIND, function()
    for _, w in ipairs(written) do
      assert_bytes(N(w[1]), HAS_INT and w[2] or w[3], "encode(" .. w[1] .. ")")
    end
    assert_bytes(1 / 0, "ca 7f800000", "inf")
    assert_bytes(-1 / 0, "ca ff800000", "-inf")
    assert.equal("cb", hex(encode(0 / 0)):sub(1, 2), "NaN is a float 64")
  end)

  it("reads each number as doc/FORMAT.md says for " .. KIND, function()
    for _, r in ipairs(read) do
      local want = r[3]
      if HAS_INT then
        want = r[2]
      end
      local v, msg, code = decode(unhex(r[1]))
      if want == nil then
        assert.is_nil(v, r[1])
        assert.equal(lxshm.CORRUPT, code)
        assert.matches("above math.maxinteger", msg)
      else
        assert_same(N(want), v, "decode(" .. r[1] .. ")")
      end
    end
  end)

  it("keeps -0.0, infinities and NaN as floats", function()
    local z = decode(encode(N("-0.0")))
    assert.equal(-1 / 0, 1 / z)
    assert.equal(1 / 0, decode(encode(1 / 0)))
    assert.equal(-1 / 0, decode(encode(-1 / 0)))
    local nan = decode(encode(0 / 0))
    assert.is_true(nan ~= nan)
  end)

  if HAS_INT then
    it("keeps math.type, math.maxinteger and math.mininteger (" .. RUNTIME .. ")", function()
      assert.equal("integer", math.type(decode(encode(3))))
      assert.equal("float", math.type(decode(encode(3.0))))
      assert.equal(math.maxinteger, decode(encode(math.maxinteger)))
      assert.equal(math.mininteger, decode(encode(math.mininteger)))
      assert_same(N("9007199254740993"), decode(encode(N("9007199254740993"))), "2^53 + 1")
      assert_same(N("9007199254740992.0"), decode(encode(N("9007199254740992.0"))), "2^53 float")
    end)

    it("reads integral float map keys as integer keys (" .. RUNTIME .. ")", function()
      local t = decode(unhex("81 cb 3ff0000000000000 a1 78"))
      assert.equal("x", t[1])
      assert.equal("integer", math.type(next(t)))
    end)
  else
    it("round-trips every integral number within 2^53 exactly (" .. RUNTIME .. ")", function()
      local x = 1
      while x <= 2 ^ 53 do
        for _, v in ipairs({ x, -x, x - 1, 1 - x, x + 1, -1 - x }) do
          if v >= -2 ^ 53 and v <= 2 ^ 53 then
            assert_same(v, decode(encode(v)), "round trip")
            assert.is_true(hex(encode(v)):sub(1, 2) ~= "ca" and hex(encode(v)):sub(1, 2) ~= "cb",
              ("%.17g is written as an integer"):format(v))
          end
        end
        x = x * 2
      end
    end)

    it("writes fractions and numbers beyond 2^53 as floats (" .. RUNTIME .. ")", function()
      for _, v in ipairs({ 0.5, -0.5, 1e-300, 2 ^ 53 + 2, -(2 ^ 53 + 2), 2 ^ 63, -2 ^ 63, 2 ^ 64,
        1e300 }) do
        local lead = hex(encode(v)):sub(1, 2)
        assert.is_true(lead == "ca" or lead == "cb", ("%.17g is written as a float"):format(v))
        assert_same(v, decode(encode(v)), "round trip")
      end
    end)

    it("treats a key 1.0 as the key 1, and merges keys that round together (" .. RUNTIME .. ")",
      function()
        assert.equal("91a178", hex(encode({ [N("1.0")] = "x" })))
        assert.equal("x", decode(unhex("81 cb 3ff0000000000000 a1 78"))[1])
        -- 2^53 + 1 and 2^53 are one key here: the last pair wins, as for a repeated key
        local t = decode(unhex("82 cf 0020000000000001 a1 61 cf 0020000000000000 a1 62"))
        assert.equal("b", t[2 ^ 53])
      end)
  end
end)
