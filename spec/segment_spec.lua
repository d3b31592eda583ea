--- Segments in one process: the API's results, its refusals, and what survives them.
-- Runs on every runtime; `<close>` exists only on Lua 5.4 (spec/helpers/close54.lua), and
-- argument errors name a userdata's type as each runtime does.
local lxshm = require("lxshm")
local util = require("util")
local proc = util.proc

after_each(util.cleanup)

local function shm_path(name)
  return "/dev/shm/lxshm." .. name
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then
    f:close()
  end
  return f ~= nil
end

describe("the module", function()
  it("has a version and the recipe's four status codes with their numbers", function()
    assert.matches("^lxshm %d+%.%d+%.%d+$", lxshm._VERSION)
    assert.equal(0, lxshm.OK)
    assert.equal(1, lxshm.EXISTS)
    assert.equal(2, lxshm.INVALID)
    assert.equal(3, lxshm.INVALID_SIZE)
  end)

  it("has distinct integer codes with names and descriptions", function()
    local seen = {}
    for _, name in ipairs({ "OK", "EXISTS", "INVALID", "INVALID_SIZE", "NOT_FOUND", "TIMEOUT",
      "CORRUPT", "PERMISSION", "UNSUPPORTED", "SYSTEM" }) do
      local code = lxshm[name]
      assert.is_true(util.is_integer(code), name)
      assert.is_nil(seen[code], name)
      seen[code] = true
      local text, cname = lxshm.strerror(code)
      assert.equal(name, cname)
      assert.equal(name, lxshm.codes[code])
      assert.is_true(#text > 0)
    end
  end)

  it("strerror names an unknown code UNKNOWN and raises on a non-number", function()
    assert.same({ "unknown status", "UNKNOWN" }, { lxshm.strerror(999) })
    assert.has_error(function() lxshm.strerror("x") end,
      "bad argument #1 to 'strerror' (number expected, got string)")
  end)
end)

describe("create", function()
  it("makes an empty segment of the given capacity", function()
    local seg = util.segment(100)
    assert.equal(100, seg:size())
    assert.equal(0, seg:version())
    assert.equal("", seg:read())
  end)

  it("gives the handle its name, a tostring and the __name lxshm.segment", function()
    local seg, name = util.segment(100)
    assert.equal(name, seg:name())
    assert.equal("lxshm.segment: " .. name .. " (100 bytes)", tostring(seg))
    assert.equal("lxshm.segment", getmetatable(seg).__name)
  end)

  it("refuses a name that is taken with EXISTS, leaving the first segment as it was", function()
    local seg, name = util.segment(16)
    assert(seg:write("first"))
    local again, err, code = lxshm.create(name, 32)
    assert.is_nil(again)
    assert.equal(lxshm.EXISTS, code)
    assert.equal(name .. ": already exists", err)
    assert.equal("first", seg:read())
    assert.equal(16, seg:size())
  end)

  it("creates the object owner-only (0600) whatever the umask", function()
    local old = proc.umask(0)
    local _, name = util.segment(8)
    proc.umask(old)
    assert.equal(tonumber("600", 8), proc.file_mode(shm_path(name)))
  end)

  it("honours opts.mode exactly, as an integer or an octal string", function()
    local old = proc.umask(tonumber("077", 8))
    local name1, name2 = util.name("mode"), util.name("mode")
    util.defer(function()
      proc.umask(old)
      lxshm.remove(name1)
      lxshm.remove(name2)
    end)
    assert(lxshm.create(name1, 8, { mode = tonumber("640", 8) })):close()
    assert(lxshm.create(name2, 8, { mode = "0660" })):close()
    assert.equal(tonumber("640", 8), proc.file_mode(shm_path(name1)))
    assert.equal(tonumber("660", 8), proc.file_mode(shm_path(name2)))
  end)

  it("raises on bad options (not a table, a bad mode, an unknown key); makes nothing", function()
    local name = util.name("opts")
    local bad_mode = "bad argument #3 to 'create' (mode must be an integer from 0 to 0777 or an"
      .. ' octal string like "0640")'
    for _, case in ipairs({
      { 1, "bad argument #3 to 'create' (table expected, got number)" },
      { "0600", "bad argument #3 to 'create' (table expected, got string)" },
      { { mode = -1 }, bad_mode }, { { mode = tonumber("1000", 8) }, bad_mode },
      { { mode = "rw" }, bad_mode }, { { mode = "0999" }, bad_mode }, { { mode = 1.5 }, bad_mode },
      { { mode = {} }, bad_mode },
      { { mdoe = 384 }, "bad argument #3 to 'create' (unknown option 'mdoe')" },
      { { [1] = 384 }, "bad argument #3 to 'create' (unknown option '?')" },
    }) do
      assert.has_error(function() lxshm.create(name, 8, case[1]) end, case[2])
    end
    assert.is_false(exists(shm_path(name)))
  end)

  it("accepts any name of 1 to 64 allowed characters", function()
    for _, name in ipairs({ "a", "Z", "0", "a.b_c-d", "_x", string.rep("n", 64),
      "ABCxyz019._-" }) do
      name = (#name < 40) and (name .. util.name("")) or name
      name = name:sub(1, 64)
      local seg, err = lxshm.create(name, 8)
      assert(seg, err)
      seg:close()
      assert(lxshm.remove(name))
    end
  end)

  local bad_names = { "", string.rep("a", 65), ".hidden", "-flag", "a/b", "../x", "/abs",
    "a b", "a\0b", "caf\195\169", "tab\t", "a:b", "a\\b", "*", "\n" }

  it("refuses every malformed name with INVALID, like attach, open and remove; makes nothing",
    function()
      for _, name in ipairs(bad_names) do
        for _, call in ipairs({
          function() return lxshm.create(name, 8) end,
          function() return lxshm.attach(name, 8) end,
          function() return lxshm.open(name) end,
          function() return lxshm.remove(name) end,
        }) do
          local r, err, code = call()
          assert.is_nil(r)
          assert.equal(lxshm.INVALID, code, name)
          assert.matches("invalid name", err)
        end
        if not name:find("[/%z]") and #name > 0 then
          assert.is_false(exists(shm_path(name)))
        end
      end
    end)

  it("raises when the name is not a string", function()
    for _, v in ipairs({ {}, true, print }) do
      local got = "(string expected, got " .. type(v) .. ")"
      assert.has_error(function() lxshm.create(v, 8) end, "bad argument #1 to 'create' " .. got)
      assert.has_error(function() lxshm.open(v) end, "bad argument #1 to 'open' " .. got)
      assert.has_error(function() lxshm.remove(v) end, "bad argument #1 to 'remove' " .. got)
    end
    assert.has_error(function() lxshm.create(nil, 8) end,
      "bad argument #1 to 'create' (string expected, got nil)")
  end)

  it("refuses sizes other than whole numbers 1 to 2^40 with INVALID_SIZE, like attach; makes none",
    function()
      local name = util.name("size")
      local sizes = { 0, -1, 1.5, 0 / 0, math.huge, -math.huge, 2 ^ 41, 2 ^ 63,
        util.MAX_INTEGER, util.MIN_INTEGER, util.NEG_ZERO, 1e-300 }
      assert.equal(12, #sizes)
      for _, size in ipairs(sizes) do
        local seg, err, code = lxshm.create(name, size)
        assert.is_nil(seg)
        assert.equal(lxshm.INVALID_SIZE, code, tostring(size))
        assert.equal(name .. ": size must be a whole number of bytes from 1 to 1099511627776", err)
        seg, _, code = lxshm.attach(name, size)
        assert.is_nil(seg)
        assert.equal(lxshm.INVALID_SIZE, code)
      end
      assert.is_false(exists(shm_path(name)))
    end)

  it("raises when the size is not a number", function()
    for _, v in ipairs({ "many", {}, true }) do
      assert.has_error(function() lxshm.create(util.name("size"), v) end,
        "bad argument #2 to 'create' (number expected, got " .. type(v) .. ")")
    end
    assert.has_error(function() lxshm.create(util.name("size")) end,
      "bad argument #2 to 'create' (number expected, got no value)")
  end)

  it("takes an integral float or a numeric string as a size", function()
    local name = util.name("size")
    util.defer(function() lxshm.remove(name) end)
    local seg = assert(lxshm.create(name, 32.0))
    assert.equal(32, seg:size())
    seg:close()
    assert(lxshm.remove(name))
    seg = assert(lxshm.create(name, "48"))
    assert.equal(48, seg:size())
    seg:close()
  end)

  it("reports a segment larger than the machine can hold as INVALID_SIZE and keeps no name",
    function()
      local name = util.name("huge")
      local seg, err, code = lxshm.create(name, 2 ^ 40)
      assert.is_nil(seg)
      assert.equal(lxshm.INVALID_SIZE, code, err)
      assert.is_false(exists(shm_path(name)))
    end)
end)

describe("write and read", function()
  it("store and return all 256 byte values exactly, as one commit", function()
    local seg = util.segment(300)
    local all = {}
    for b = 0, 255 do
      all[#all + 1] = string.char(b)
    end
    local bytes = table.concat(all)
    assert.is_true(seg:write(bytes))
    assert.equal(bytes, seg:read())
    assert.equal(1, seg:version())
  end)

  it("count every commit in the version, an empty string included", function()
    local seg = util.segment(8)
    for i = 1, 5 do
      assert(seg:write(tostring(i)))
      assert.equal(i, seg:version())
    end
    assert(seg:write(""))
    assert.equal("", seg:read())
    assert.equal(6, seg:version())
  end)

  it("accept a value of exactly the capacity", function()
    local seg = util.segment(1000)
    local v = string.rep("x", 1000)
    assert(seg:write(v))
    assert.equal(v, seg:read())
  end)

  it("refuse a value larger than the capacity with INVALID_SIZE, keeping the old value",
    function()
      local seg, name = util.segment(10)
      assert(seg:write("keep me"))
      local ok, err, code = seg:write(string.rep("y", 11))
      assert.is_nil(ok)
      assert.equal(lxshm.INVALID_SIZE, code)
      assert.equal(name .. ": value of 11 bytes exceeds the capacity of 10", err)
      assert.equal("keep me", seg:read())
      assert.equal(1, seg:version())
    end)

  it("handle values far larger than the small-value path, growing and shrinking", function()
    local seg = util.segment(3 * 1024 * 1024)
    for _, n in ipairs({ 10, 5000, 1024 * 1024, 100, 3 * 1024 * 1024, 0, 70000 }) do
      local v = util.stamp(n + 1, math.max(n, 8)):sub(1, n)
      assert(seg:write(v))
      assert.equal(v, seg:read())
    end
  end)

  it("take numbers as strings, like io.write, and raise on other types", function()
    local seg = util.segment(16)
    assert(seg:write(42))
    assert.equal("42", seg:read())
    for _, v in ipairs({ {}, true, print }) do
      assert.has_error(function() seg:write(v) end,
        "bad argument #1 to 'write' (string expected, got " .. type(v) .. ")")
    end
    assert.has_error(function() seg:write() end,
      "bad argument #1 to 'write' (string expected, got no value)")
    assert.equal("42", seg:read())
  end)

  it("raise on a negative, NaN or string timeout; accept 0, a fraction and infinity", function()
    local seg = util.segment(16)
    assert.has_error(function() seg:write("x", -1) end,
      "bad argument #2 to 'write' (timeout must be a number of seconds >= 0)")
    assert.has_error(function() seg:write("x", 0 / 0) end,
      "bad argument #2 to 'write' (timeout must be a number of seconds >= 0)")
    assert.has_error(function() seg:write("x", "soon") end,
      "bad argument #2 to 'write' (number expected, got string)")
    assert.is_true(seg:write("a", 0))
    assert.is_true(seg:write("b", 0.25))
    assert.is_true(seg:write("c", math.huge))
    assert.equal("c", seg:read())
    assert.equal(3, seg:version())
  end)
end)

describe("handles", function()
  it("share one value between several handles of one process", function()
    local a, name = util.segment(32)
    local b = assert(lxshm.open(name))
    util.defer(function() b:close() end)
    assert(a:write("from a"))
    assert.equal("from a", b:read())
    assert(b:write("from b"))
    assert.equal("from b", a:read())
    assert.equal(2, a:version())
  end)

  it("raise on any method after close, which is idempotent and shows in tostring", function()
    local seg, name = util.segment(8)
    seg:close()
    seg:close()
    assert.equal("lxshm.segment: " .. name .. " (closed)", tostring(seg))
    for _, m in ipairs({ "size", "name", "version", "read", "stat" }) do
      assert.has_error(function() seg[m](seg) end, "attempt to use a closed lxshm segment")
    end
    assert.has_error(function() seg:write("x") end, "attempt to use a closed lxshm segment")
    assert.has_error(function() seg:wait(0, 0) end, "attempt to use a closed lxshm segment")
  end)

  it("raise when a method is called on something else", function()
    local seg = util.segment(8)
    assert.has_error(function() seg.read("x") end,
      "bad argument #1 to 'read' (lxshm.segment expected, got string)")
    assert.has_error(function() seg.size() end,
      "bad argument #1 to 'size' (lxshm.segment expected, got no value)")
    -- From 5.3 on, argument errors name a userdata by its __name, as 5.1 and 5.2 do not.
    local file = _VERSION >= "Lua 5.3" and "FILE*" or "userdata"
    assert.has_error(function() seg.write(io.stdout, "x") end,
      "bad argument #1 to 'write' (lxshm.segment expected, got " .. file .. ")")
  end)

  local mappings_of = util.mappings_of

  it("unmap when collected", function()
    local name = util.name("gc")
    util.defer(function() lxshm.remove(name) end)
    assert(lxshm.create(name, 8)):close()
    assert.equal(0, mappings_of(name))
    local function open_and_drop()
      assert(lxshm.open(name))
      assert.equal(1, mappings_of(name))
    end
    open_and_drop()
    collectgarbage()
    collectgarbage()
    assert.equal(0, mappings_of(name))
  end)

  it("know whether this runtime has <close>: Lua 5.4 and later", function()
    assert.equal(_VERSION >= "Lua 5.4", util.HAS_CLOSE)
  end)

  if util.HAS_CLOSE then
    it("unmap when closed by <close>, also when the scope raises (Lua 5.4)", function()
      local close54 = dofile("spec/helpers/close54.lua")
      local name = util.name("close")
      util.defer(function() lxshm.remove(name) end)
      local function open() return assert(lxshm.attach(name, 8)) end
      close54.scope(open, function(seg)
        assert.equal(name, seg:name())
        assert.equal(1, mappings_of(name))
      end)
      assert.equal(0, mappings_of(name))
      local err = close54.scope_raising(open, function(seg)
        assert(seg:write("x"))
        error("raised inside the scope")
      end)
      assert.matches("raised inside the scope", err)
      assert.equal(0, mappings_of(name))
    end)
  else
    -- No `<close>` here: a handle that goes out of scope is unmapped by its __gc, at the next
    -- collection, and close() unmaps at once.
    it("unmap a handle dropped at the end of a scope when collected (no <close> on "
      .. util.RUNTIME .. ")", function()
        local name = util.name("close")
        util.defer(function() lxshm.remove(name) end)
        do
          local seg = assert(lxshm.attach(name, 8))
          assert.equal(name, seg:name())
          assert.equal(1, mappings_of(name))
        end
        collectgarbage()
        collectgarbage()
        assert.equal(0, mappings_of(name))
        local ok = pcall(function()
          local seg = assert(lxshm.attach(name, 8))
          assert(seg:write("x"))
          assert.equal(1, mappings_of(name))
          error("raised inside the scope")
        end)
        assert.is_false(ok)
        collectgarbage()
        collectgarbage()
        assert.equal(0, mappings_of(name))
      end)
  end

  -- Every kind of handle shares the same __gc and __close: each must let go of its mapping.
  it("of every kind (segment, queue, dict, topic) unmap when collected"
    .. (util.HAS_CLOSE and " or closed by <close> (Lua 5.4)" or ""), function()
    for _, kind in ipairs({ "", "_queue", "_dict", "_topic" }) do
      local name = util.name("kind")
      util.defer(function() lxshm.remove(name) end)
      local function open() return assert(lxshm["attach" .. kind](name, 65536)) end
      local held = { open() }
      assert.equal(1, mappings_of(name), kind)
      assert.equal(name, held[1]:name(), kind)
      held[1] = nil -- now garbage
      collectgarbage()
      collectgarbage()
      assert.equal(0, mappings_of(name), kind)
      if util.HAS_CLOSE then
        dofile("spec/helpers/close54.lua").scope(open, function()
          assert.equal(1, mappings_of(name), kind)
        end)
        assert.equal(0, mappings_of(name), kind)
      end
    end
  end)
end)

describe("open, attach and remove", function()
  it("open finds an existing segment and reports a missing one as NOT_FOUND", function()
    local seg, name = util.segment(24)
    assert(seg:write("hi"))
    local other = assert(lxshm.open(name))
    assert.equal(24, other:size())
    assert.equal("hi", other:read())
    other:close()
    local missing = util.name("missing")
    local r, err, code = lxshm.open(missing)
    assert.is_nil(r)
    assert.equal(lxshm.NOT_FOUND, code)
    assert.equal(missing .. ": does not exist", err)
  end)

  it("attach creates a missing segment; opens an existing one at its own size and mode", function()
    local name = util.name("attach")
    util.defer(function() lxshm.remove(name) end)
    local a = assert(lxshm.attach(name, 40))
    assert.equal(40, a:size())
    assert(a:write("made by a"))
    local b = assert(lxshm.attach(name, 4000, { mode = "0644" }))
    assert.equal(40, b:size())
    assert.equal("made by a", b:read())
    assert.equal(tonumber("600", 8), proc.file_mode(shm_path(name)))
    a:close()
    b:close()
  end)

  it("remove takes the name away; open handles keep sharing the value", function()
    local seg, name = util.segment(16)
    local other = assert(lxshm.open(name))
    assert.is_true(lxshm.remove(name))
    assert.is_false(exists(shm_path(name)))
    local _, _, code = lxshm.open(name)
    assert.equal(lxshm.NOT_FOUND, code)
    assert(seg:write("still here"))
    assert.equal("still here", other:read())
    other:close()
  end)

  it("remove of a missing name is NOT_FOUND", function()
    local name = util.name("gone")
    local ok, err, code = lxshm.remove(name)
    assert.is_nil(ok)
    assert.equal(lxshm.NOT_FOUND, code)
    assert.equal(name .. ": does not exist", err)
  end)

  it("create after remove makes a new, empty segment beside the old handle", function()
    local old, name = util.segment(16)
    assert(old:write("old value"))
    assert(lxshm.remove(name))
    local new = assert(lxshm.create(name, 32))
    assert.equal(0, new:version())
    assert.equal("", new:read())
    assert(new:write("new value"))
    assert.equal("old value", old:read())
    new:close()
  end)
end)

describe("wait", function()
  it("returns at once when the version already differs", function()
    local seg = util.segment(8)
    assert(seg:write("x"))
    assert.equal(1, seg:wait(0))
    assert.equal(1, seg:wait(7, 0))
  end)

  it("times out with TIMEOUT when nothing is committed, at once or after the timeout", function()
    local seg, name = util.segment(8)
    local v, err, code = seg:wait(0, 0)
    assert.is_nil(v)
    assert.equal(lxshm.TIMEOUT, code)
    assert.matches("^" .. name:gsub("%-", "%%-") .. ": ", err)
    v, err, code = seg:wait(0, 0.02)
    assert.is_string(err)
    assert.is_nil(v)
    assert.equal(lxshm.TIMEOUT, code)
  end)

  it("raises on a missing, fractional or string version and a negative or NaN timeout", function()
    local seg = util.segment(8)
    assert.has_error(function() seg:wait() end,
      "bad argument #1 to 'wait' (number expected, got no value)")
    assert.has_error(function() seg:wait(1.5) end,
      "bad argument #1 to 'wait' (number has no integer representation)")
    assert.has_error(function() seg:wait("v") end,
      "bad argument #1 to 'wait' (number expected, got string)")
    assert.has_error(function() seg:wait(0, -0.5) end,
      "bad argument #2 to 'wait' (timeout must be a number of seconds >= 0)")
    assert.has_error(function() seg:wait(0, 0 / 0) end,
      "bad argument #2 to 'wait' (timeout must be a number of seconds >= 0)")
  end)
end)

describe("stat", function()
  it("describes the segment and its last commit", function()
    local seg, name = util.segment(50)
    local st = seg:stat()
    assert.same({ name = name, size = 50, used = 0, version = 0, writer_pid = 0, updated = 0,
      waiters = 0 }, st)
    local before = os.time()
    assert(seg:write("twelve bytes"))
    st = seg:stat()
    assert.equal(12, st.used)
    assert.equal(1, st.version)
    assert.equal(proc.pid(), st.writer_pid)
    if util.HAS_INT then
      assert.equal("float", math.type(st.updated)) -- seconds with a fraction, like os.time's
    else
      assert.is_number(st.updated)
    end
    assert.is_true(st.updated >= before - 1 and st.updated <= os.time() + 1)
  end)
end)

describe("foreign and damaged mappings", function()
  --- Writes `bytes` at `offset` of the segment's object, as a stray process could.
  local function poke(name, offset, bytes)
    local f = assert(io.open(shm_path(name), "r+b"))
    f:seek("set", offset)
    f:write(bytes)
    f:close()
  end

  local function plant(name, content)
    local f = assert(io.open(shm_path(name), "wb"))
    f:write(content)
    f:close()
    util.defer(function() os.remove(shm_path(name)) end)
  end

  it("refuses an object lxshm did not make with INVALID", function()
    local name = util.name("foreign")
    plant(name, string.rep("\127ELF garbage ", 100))
    local seg, err, code = lxshm.open(name)
    assert.is_nil(seg)
    assert.equal(lxshm.INVALID, code)
    assert.equal(name .. ": not an lxshm segment", err)
    seg, err, code = lxshm.attach(name, 64)
    assert.is_nil(seg)
    assert.equal(lxshm.INVALID, code)
    assert.equal(name .. ": not an lxshm segment", err)
  end)

  it("refuses an object smaller than a header with INVALID", function()
    local name = util.name("tiny")
    plant(name, "tiny")
    local _, _, code = lxshm.open(name)
    assert.equal(lxshm.INVALID, code)
  end)

  it("reports an object that never finishes initializing as CORRUPT, after a bounded wait",
    function()
      for _, content in ipairs({ "", string.rep("\0", 4096) }) do
        local name = util.name("stuck")
        plant(name, content)
        local t0 = proc.now()
        local seg, err, code = lxshm.open(name)
        assert.is_nil(seg)
        assert.equal(lxshm.CORRUPT, code, err)
        assert.equal(name .. ": never finished initializing (its creator died?)", err)
        assert.is_true(proc.now() - t0 < 5)
      end
    end)

  it("reports damaged identity fields as CORRUPT or INVALID", function()
    local cases = {
      { offset = 4, bytes = "\009\000\000\000", code = "INVALID" },  -- layout version
      { offset = 8, bytes = "\002\000\000\000", code = "INVALID" },  -- kind: a queue
      { offset = 8, bytes = "\007\000\000\000", code = "INVALID",  -- kind: made by a newer build
        message = "made by a newer lxshm (an object of kind 7)" },
      { offset = 16, bytes = "\0\0\0\0\0\0\1\0", code = "CORRUPT" }, -- capacity
      { offset = 24, bytes = "\1\0\0\0\0\0\0\0", code = "CORRUPT" }, -- map size
      { offset = 0, bytes = "XXXX", code = "INVALID" },  -- magic
    }
    for _, case in ipairs(cases) do
      local seg, name = util.segment(64, "damaged")
      seg:close()
      poke(name, case.offset, case.bytes)
      local r, err, code = lxshm.open(name)
      assert.is_nil(r)
      assert.equal(lxshm[case.code], code, err)
      if case.message then
        assert.equal(name .. ": " .. case.message, err)
      end
    end
  end)

  it("reports a truncated object as CORRUPT", function()
    local seg, name = util.segment(4096, "trunc")
    seg:close()
    local f = assert(io.open(shm_path(name), "rb"))
    local content = f:read("*a")
    f:close()
    f = assert(io.open(shm_path(name), "wb"))
    f:write(content:sub(1, math.floor(#content / 2)))
    f:close()
    local r, err, code = lxshm.open(name)
    assert.is_nil(r)
    assert.equal(lxshm.CORRUPT, code, err)
  end)

  it("reports a damaged value length as CORRUPT until the next write replaces the value", function()
    local seg, name = util.segment(64, "len")
    assert(seg:write("fine"))
    -- version 1 lives in slot 1, whose descriptor starts at byte 192 + 32.
    poke(name, 224, "\255\255\255\255\000\000\000\000")
    local v, err, code = seg:read()
    assert.is_nil(v)
    assert.equal(lxshm.CORRUPT, code)
    assert.equal(name .. ": value descriptor is damaged", err)
    assert(seg:write("repaired by the next commit"))
    assert.equal("repaired by the next commit", seg:read())
  end)
end)
