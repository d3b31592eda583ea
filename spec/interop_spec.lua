-- lxshm's encoded values read and written by a real MessagePack peer: Debian's python3-msgpack,
-- run as /usr/bin/python3 spec/helpers/msgpack_peer.py. Missing python3-msgpack is a failure
-- with a clear message, never a skip (CI installs it).
-- On 5.1, 5.2 and LuaJIT, numbers are doubles: what Python sees and what Lua reads follow the
-- rules of doc/FORMAT.md, "Lua runtimes", and the tests say which kind they check.
local lxshm = require("lxshm")
local util = require("util")

local HAS_INT = util.HAS_INT

after_each(util.cleanup)

local PYTHON = os.getenv("LXSHM_TEST_PYTHON") or "/usr/bin/python3"
local PEER = "spec/helpers/msgpack_peer.py"

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function spit(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

local function q(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- The peer's command line. LD_PRELOAD is cleared: under `make asan` it holds libasan, whose
-- leak report on Python itself would fail the peer.
local function peer_command(args)
  local cmd = "LD_PRELOAD= " .. q(PYTHON) .. " " .. q(PEER)
  for _, a in ipairs(args) do
    cmd = cmd .. " " .. q(a)
  end
  return cmd
end

-- Runs the peer; returns its stdout+stderr and raises unless it exited with status 0.
local function peer(...)
  local out = os.tmpname()
  local cmd = peer_command({ ... })
  local _, how, code = util.execute(cmd .. " > " .. q(out) .. " 2>&1")
  local text = slurp(out)
  os.remove(out)
  if how ~= "exit" or code ~= 0 then
    error(("%s failed (%s %s): %s"):format(cmd, tostring(how), tostring(code), text), 2)
  end
  return text
end


local deep_equal = util.deep_equal

describe("MessagePack interop with python3-msgpack", function()
  lazy_setup(function()
    local out = os.tmpname()
    local _, _, code = util.execute(peer_command({ "check" }) .. " > " .. q(out) .. " 2>&1")
    local text = slurp(out)
    os.remove(out)
    if code ~= 0 then
      error(("the interop tests need python3-msgpack for %s (exit %s): %s"):format(PYTHON,
        tostring(code), text))
    end
  end)

  it("Python reads every corpus item and writes it back unchanged", function()
    for _, item in ipairs(util.corpus()) do
      local mine, back = os.tmpname(), os.tmpname()
      spit(mine, assert(lxshm.encode(item.value)))
      peer("roundtrip", mine, back)
      local v, msg = lxshm.decode(slurp(back))
      os.remove(mine)
      os.remove(back)
      assert.is_nil(msg)
      assert.is_true(deep_equal(item.value, v), item.name .. " changed through Python")
    end
  end)

  -- With an integer subtype, 1.0 is a float and the extremes are math.maxinteger and
  -- math.mininteger; with doubles only, 1.0 is the integer 1, the extremes are ±2^53, and 2^63 is
  -- beyond them: a float.
  it("Python sees integers as int, floats as float, text as str and bytes as bin (" .. (HAS_INT
    and "integer subtype" or "doubles only") .. ": " .. util.RUNTIME .. ")", function()
    local path = os.tmpname()
    spit(path, assert(lxshm.encode({ 1, 1.0, 1.5, 0.1, util.NEG_ZERO, 1 / 0, -1 / 0, 0 / 0,
      util.MAX_INTEGER, util.MIN_INTEGER, -33, "h\195\169llo", util.unhex("ff00"),
      util.unhex("eda080"), "", true, false, { a = 1, [2] = "x", [2.5] = {} }, 2 ^ 63 })))
    local text = peer("describe", path)
    os.remove(path)
    assert.equal("[int:1, " .. (HAS_INT and "float:1.0" or "int:1") .. ", float:1.5, float:0.1, "
      .. "float:-0.0, float:inf, float:-inf, float:nan, "
      .. (HAS_INT and "int:9223372036854775807, int:-9223372036854775808"
        or "int:9007199254740992, int:-9007199254740992")
      .. ", int:-33, str:'héllo', bin:ff00, bin:eda080, str:'', true, false, "
      .. "{float:2.5={}, int:2=str:'x', str:'a'=int:1}, float:9.223372036854776e+18]\n", text)
  end)

  describe("lxshm reads what Python writes", function()
    local got = {}
    lazy_setup(function()
      local path = os.tmpname()
      peer("emit", path)
      local data = slurp(path)
      os.remove(path)
      local pos = 1
      while pos <= #data do
        local name, len, start = data:match("^([^\n]+)\n(%d+)\n()", pos)
        assert(name, "bad framing from the peer at byte " .. pos)
        got[name] = data:sub(start, start + tonumber(len) - 1)
        pos = start + tonumber(len)
      end
    end)

    local function value(name)
      assert(got[name], "the peer wrote no " .. name)
      local v, msg = lxshm.decode(got[name])
      assert.is_nil(msg)
      return v
    end

    -- 2^63 - 1 and -2^63 read as themselves on 5.3 and 5.4, as the nearest doubles elsewhere.
    it("integers of every width", function()
      local v = value("ints")
      assert.same({ 0, 1, -1, 127, 128, -33, 255, 256, 65535, 65536, 4294967295, 4294967296,
        rawget(math, "maxinteger") or 2 ^ 63, rawget(math, "mininteger") or -2 ^ 63 }, v)
      for i = 1, #v do
        assert.is_true(util.is_integer(v[i]) or not HAS_INT and i >= 13, "ints[" .. i .. "]")
      end
    end)

    it("floats, single and double", function()
      local v = value("floats")
      assert.equal(1.5, v[1])
      assert.equal(0.1, v[2])
      assert.equal(-1 / 0, 1 / v[3])
      assert.equal(1 / 0, v[4])
      assert.equal(-1 / 0, v[5])
      assert.is_true(v[6] ~= v[6])
      assert.equal(1e300, v[7])
      if HAS_INT then
        for _, f in ipairs(v) do
          assert.equal("float", math.type(f))
        end
      end
      local s = value("single")
      assert.equal(1.5, s[1])
      assert.equal(13421773 * 2 ^ -27, s[2]) -- the float32 nearest to 0.1
      if HAS_INT then
        assert.equal("float", math.type(s[2]))
      end
    end)

    it("str, bin and the old raw form as Lua strings", function()
      assert.same({ "h\195\169llo", "\255\000\001", "", "" }, value("str_bin"))
      assert.equal("abc", value("old_raw"))
    end)

    it("maps with integer, float and string keys, nested", function()
      local v = value("nested")
      assert.equal("x", v.name)
      assert.same({ 1, { 2, { 3 } } }, v.list)
      assert.equal("int key", v[1])
      for k in pairs(v) do
        if k == 1 then
          assert.is_true(util.is_integer(k))
        end
      end
      assert.equal("negative key", v[-5])
      assert.equal("float key", v[2.5])
      assert.same({ a = {} }, v.map) -- a nil value leaves no key
    end)

    it("booleans and nil in arrays", function()
      local v = value("bool_nil")
      assert.is_true(v[1])
      assert.is_false(v[2])
      assert.is_nil(v[3])
      assert.equal(1, v[4])
    end)

    it("array32, map16, str32 and bin16", function()
      local v = value("big")
      assert.equal(70000, #v.seq)
      assert.equal(69999, v.seq[70000])
      assert.equal(19, v.map.k19)
      assert.equal(string.rep("t", 70000), v.text)
      assert.equal(512, #v.blob)
    end)

    it("refuses what Lua cannot hold: " .. (HAS_INT and "uint64 above maxinteger, " or "")
      .. "timestamps, other ext types", function()
        local refused = { timestamp = "unsupported ext type %-1 %(timestamp%)",
          ext5 = "unsupported ext type 5" }
        if HAS_INT then
          refused.uint64_max = "above math.maxinteger"
        end
        for name, pattern in pairs(refused) do
          assert(got[name], "the peer wrote no " .. name)
          local v, msg, code = lxshm.decode(got[name])
          assert.is_nil(v)
          assert.matches(pattern, msg)
          assert.equal(lxshm.CORRUPT, code)
        end
      end)

    if not HAS_INT then
      it("reads a uint64 above 2^63 - 1 as the nearest double (doubles only: " .. util.RUNTIME
        .. ")", function()
          assert(got.uint64_max, "the peer wrote no uint64_max")
          assert.equal(2 ^ 64, lxshm.decode(got.uint64_max))
        end)
    end
  end)
end)
