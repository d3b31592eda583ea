--- put, get and update on segments: Lua values stored whole, refusals that change nothing.
local lxshm = require("lxshm")
local util = require("util")

after_each(util.cleanup)

describe("put and get", function()
  it("return nil before anything was stored", function()
    local seg = util.segment()
    assert.is_nil(seg:get())
    assert.equal(0, select("#", seg:get()) - 1)
  end)

  -- Integer and float are kept apart where they exist (5.3, 5.4); elsewhere the extremes are
  -- ±2^53 and 0.0 is the number 0.
  it("store every kind of value, keeping integer and float apart where they exist", function()
    local seg = util.segment()
    local values = { true, false, 0, -1, util.MAX_INTEGER, util.MIN_INTEGER, 0.0, util.NEG_ZERO,
      1.5, math.huge, -math.huge, "", "text", "\0\255 bytes", { 1, 2, 3 }, { a = 1, [2] = "b" },
      { nested = { deeper = { "x" } } } }
    assert.equal(17, #values)
    for _, v in ipairs(values) do
      assert.is_true(seg:put(v))
      local got = seg:get()
      assert.is_true(util.deep_equal(v, got))
      assert.same(v, got)
    end
    assert(seg:put(0 / 0))
    local nan = seg:get()
    assert.is_true(nan ~= nan)
    assert(seg:put(util.NEG_ZERO))
    assert.equal("-0.0", string.format("%.1f", seg:get()))
  end)

  it("store nil as a value, counted as a commit", function()
    local seg = util.segment()
    assert(seg:put("x"))
    assert.is_true(seg:put(nil))
    assert.is_nil(seg:get())
    assert.equal(2, seg:version())
  end)

  it("keep shared subtables shared and cycles cyclic", function()
    local seg = util.segment()
    local shared = { 1, 2 }
    local t = { a = shared, b = shared }
    t.self = t
    assert(seg:put(t))
    local got = seg:get()
    assert.equal(got.a, got.b)
    assert.equal(got, got.self)
    assert.same({ 1, 2 }, got.a)
  end)

  it("drop metatables and never call metamethods", function()
    local seg = util.segment()
    local called = false
    local mt = {
      __index = function() called = true end,
      __pairs = function() called = true end,
      __len = function() called = true return 99 end,
    }
    assert(seg:put(setmetatable({ 1, x = 2 }, mt)))
    local got = seg:get()
    assert.is_nil(getmetatable(got))
    assert.same({ 1, x = 2 }, got)
    assert.is_false(called)
  end)

  it("read back a raw write as the string, and a put as its encoding", function()
    local seg = util.segment()
    assert(seg:write("plain bytes"))
    assert.equal("plain bytes", seg:get())
    assert(seg:put({ 1, 2 }))
    assert.equal(lxshm.encode({ 1, 2 }), seg:read())
  end)

  it("refuse what cannot be stored with UNSUPPORTED, naming where, keeping the old value",
    function()
      local seg, name = util.segment()
      assert(seg:put({ kept = true }))
      local cases = {
        { print, "value is a function" },
        { { player = { on_hit = print } }, "value at .player.on_hit is a function" },
        { { 1, 2, coroutine.create(function() end) }, "value at [3] is a thread" },
        { { io.stdout }, "value at [1] is a userdata" },
        { { [print] = 1 }, "key at .? is a function" },
      }
      for _, case in ipairs(cases) do
        local ok, err, code = seg:put(case[1])
        assert.is_nil(ok)
        assert.equal(lxshm.UNSUPPORTED, code)
        assert.matches(name .. ": ", err, 1, true)
        if case[2]:find("?", 1, true) then
          assert.matches("key", err)
        else
          assert.equal(name .. ": " .. case[2], err)
        end
      end
      assert.same({ kept = true }, seg:get())
      assert.equal(1, seg:version())
    end)

  it("refuse nesting deeper than MAX_DEPTH with UNSUPPORTED, storing nothing", function()
    local seg = util.segment(1024 * 1024)
    local deep = {}
    local t = deep
    for _ = 1, lxshm.MAX_DEPTH + 50 do
      t[1] = {}
      t = t[1]
    end
    local ok, _, code = seg:put(deep)
    assert.is_nil(ok)
    assert.equal(lxshm.UNSUPPORTED, code)
    assert.is_nil(seg:get())
  end)

  it("refuse an encoding over the capacity with INVALID_SIZE, keeping the old value", function()
    local seg, name = util.segment(64)
    assert(seg:put("small"))
    local ok, err, code = seg:put(string.rep("x", 100))
    assert.is_nil(ok)
    assert.equal(lxshm.INVALID_SIZE, code)
    assert.matches("^" .. name:gsub("%-", "%%-") .. ": ", err)
    ok, err, code = seg:put({ string.rep("y", 30), string.rep("z", 30), 1.5 }) -- 68 bytes
    assert.is_string(err)
    assert.is_nil(ok)
    assert.equal(lxshm.INVALID_SIZE, code)
    assert.equal("small", seg:get())
  end)

  -- Strings of 64 KiB or more alone skip the encoder on put and get: same bytes, same limits.
  it("store a big string alone as its encoding, up to the capacity and not a byte more", function()
    local text = string.rep("héllo 日本語 ", 8192)
    for _, s in ipairs({ string.rep("\255", 65536), text, text .. "\192" }) do
      local seg, name = util.segment(#s + 5)
      assert.is_true(seg:put(s))
      assert.equal(s, seg:get())
      assert.equal(lxshm.encode(s), seg:read())
      assert.equal("\145" .. seg:read(), lxshm.encode({ s }))
      local ok, err, code = seg:put({ s }) -- one byte more than the capacity
      assert.is_nil(ok)
      assert.equal(lxshm.INVALID_SIZE, code)
      assert.matches(name .. ": ", err, 1, true)
      assert(seg:put(s))
      ok, err, code = seg:put(s .. "!")
      assert.is_nil(ok)
      assert.equal(lxshm.INVALID_SIZE, code)
      assert.equal(("%s: encoded value exceeds the limit of %d bytes"):format(name, #s + 5), err)
      assert.equal(s, seg:get())
    end
  end)

  -- get copies a stored value that is one string of more than 1 KiB straight out of the mapping,
  -- skipping the header by its kind: every header size, str and bin, either side of 64 KiB.
  it("read back strings of every header size, however they were put", function()
    local seg = util.segment(300 * 1024)
    for _, n in ipairs({ 1024, 1025, 4000, 65535, 65536, 70000, 300 * 1024 - 6 }) do
      for _, byte in ipairs({ "a", "\255" }) do
        local s = string.rep(byte, n - 1) .. "z"
        assert(seg:put(s))
        assert.equal(s, seg:get(), n .. " bytes of " .. byte)
        assert(seg:put({ s }))
        assert.equal(s, seg:get()[1])
        assert(seg:write(lxshm.encode(s))) -- raw bytes are returned as they are
        assert.equal(lxshm.encode(s), seg:get())
      end
    end
  end)

  it("raise when put has no value, a negative timeout or no segment", function()
    local seg = util.segment()
    assert.has_error(function() seg:put() end, "bad argument #1 to 'put' (value expected)")
    assert.has_error(function() seg:put(1, -1) end,
      "bad argument #2 to 'put' (timeout must be a number of seconds >= 0)")
    assert.has_error(function() seg.put(nil, 1) end,
      "bad argument #1 to 'put' (lxshm.segment expected, got nil)")
  end)

  it("report a damaged stored value as CORRUPT", function()
    local seg, name = util.segment()
    assert(seg:put({ 1, 2, 3 }))
    local f = assert(io.open("/dev/shm/lxshm." .. name, "r+b"))
    -- version 1's bytes start at slot 1: byte 1024 (the header) + the slot stride (4096).
    f:seek("set", 1024 + 4096)
    f:write("\193")
    f:close()
    local v, err, code = seg:get()
    assert.is_nil(v)
    assert.equal(lxshm.CORRUPT, code)
    assert.matches("^" .. name:gsub("%-", "%%-") .. ": ", err)
  end)
end)

describe("update", function()
  it("passes the current value, and stores and returns what the function returns", function()
    local seg = util.segment()
    local seen = "unset"
    assert.equal(1, seg:update(function(v)
      seen = v
      return 1
    end))
    assert.is_nil(seen)
    assert.same({ n = 2 }, seg:update(function(v) return { n = v + 1 } end))
    assert.same({ n = 2 }, seg:get())
    assert.equal(2, seg:version())
  end)

  it("stores nothing and re-raises when the function raises, leaving the lock free", function()
    local seg = util.segment()
    assert(seg:put("before"))
    local ok, err = pcall(seg.update, seg, function() error({ code = 7 }) end)
    assert.is_false(ok)
    assert.same({ code = 7 }, err)
    assert.equal("before", seg:get())
    assert.equal(1, seg:version())
    assert.is_true(seg:write("lock is free", 0))
  end)

  it("returns UNSUPPORTED or INVALID_SIZE for a result it cannot store, storing nothing", function()
    local seg, name = util.segment(32)
    assert(seg:put(1))
    local v, err, code = seg:update(function() return print end)
    assert.is_nil(v)
    assert.equal(lxshm.UNSUPPORTED, code)
    assert.equal(name .. ": value is a function", err)
    v, err, code = seg:update(function() return string.rep("x", 100) end)
    assert.is_string(err)
    assert.is_nil(v)
    assert.equal(lxshm.INVALID_SIZE, code)
    assert.equal(1, seg:get())
    assert.is_true(seg:write("lock is free", 0))
  end)

  it("raises on misuse inside its own function, storing nothing, releasing the lock", function()
    local seg, name = util.segment()
    assert(seg:put(0))
    local locked = name .. ": segment is locked by its own update in progress"
    for _, case in ipairs({
      { function() seg:write("x") end, locked },
      { function() seg:put(1) end, locked },
      { function() seg:update(function() return 2 end) end, locked },
      { function() seg:close() end, name .. ": cannot close a segment inside its own update" },
    }) do
      local misuse = case[1]
      assert.has_error(function() seg:update(function() misuse() return 9 end) end, case[2])
      assert.equal(0, seg:get())
    end
    assert.is_true(seg:write("lock is free", 0))
  end)

  it("raises when the function yields across it, releasing the lock", function()
    local seg = util.segment()
    local co = coroutine.wrap(function()
      return seg:update(function() coroutine.yield() end)
    end)
    -- each runtime's own words for it
    local across = util.LUAJIT and "attempt to yield across C-call boundary"
      or _VERSION == "Lua 5.1" and "attempt to yield across metamethod/C-call boundary"
      or "attempt to yield across a C-call boundary"
    assert.has_error(co, across)
    assert.is_true(seg:write("lock is free", 0))
  end)

  it("lets the function read the segment it updates", function()
    local seg = util.segment()
    assert(seg:put("v1"))
    assert.equal("v1+v1", seg:update(function(v) return v .. "+" .. seg:get() end))
  end)

  it("raises on a missing or non-function argument and a negative timeout", function()
    local seg = util.segment()
    assert.has_error(function() seg:update() end,
      "bad argument #1 to 'update' (function expected, got no value)")
    assert.has_error(function() seg:update("not a function") end,
      "bad argument #1 to 'update' (function expected, got string)")
    assert.has_error(function() seg:update(function() end, -1) end,
      "bad argument #2 to 'update' (timeout must be a number of seconds >= 0)")
  end)
end)
