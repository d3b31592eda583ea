--- Conformance: segments (SPEC §4) through a namespace, on every backend (spec/conformance_spec).
-- b.ns is the namespace, b.name(tag) a fresh name removed after the test, b.child(cmd, ...) a
-- process running spec/helpers/ns_child.lua against the same backend, b.redis whether it is Redis.
local lxshm = require("lxshm")
local util = require("util")

return function(b)
  describe("segments", function()
    local function segment(size, tag)
      local name = b.name(tag or "seg")
      local seg = assert(b.ns:create(name, size or 4096))
      util.defer(function() seg:close() end)
      return seg, name
    end

    it("list names every object of the namespace, of every kind, sorted", function()
      local names = { b.name("lista"), b.name("listb"), b.name("listc"), b.name("listd") }
      local made = { assert(b.ns:create(names[1], 64)), assert(b.ns:create_queue(names[2], 64)),
        assert(b.ns:create_dict(names[3], 65536)), assert(b.ns:create_topic(names[4], 4096)) }
      for _, h in ipairs(made) do
        util.defer(function() h:close() end)
      end
      local listed = assert(b.ns:list())
      local seen = {}
      for i, n in ipairs(listed) do
        seen[n] = true
        if i > 1 then
          assert.is_true(listed[i - 1] < n)
        end
      end
      for _, n in ipairs(names) do
        assert.is_true(seen[n], n .. " listed")
      end
    end)

    it("create, open, attach and remove give the local module's results and codes", function()
      local name = b.name("life")
      local seg = assert(b.ns:create(name, 100))
      assert.equal(name, seg:name())
      assert.equal(100, seg:size())
      assert.equal("lxshm.segment: " .. name .. " (100 bytes)", tostring(seg))
      assert.equal("lxshm.segment", getmetatable(seg).__name)
      local again, err, code = b.ns:create(name, 100)
      assert.is_nil(again)
      assert.equal(lxshm.EXISTS, code)
      assert.equal(name .. ": already exists", err)
      local other = assert(b.ns:open(name))
      assert.equal(100, other:size())
      local att = assert(b.ns:attach(name, 5))
      assert.equal(100, att:size()) -- size only matters to the creator
      other:close()
      att:close()
      seg:close()
      assert.is_true(b.ns:remove(name))
      local none
      none, err, code = b.ns:open(name)
      assert.is_nil(none)
      assert.equal(lxshm.NOT_FOUND, code)
      assert.equal(name .. ": does not exist", err)
      none, err, code = b.ns:remove(name)
      assert.is_nil(none)
      assert.equal(lxshm.NOT_FOUND, code)
      assert.equal(name .. ": does not exist", err)
      local made = assert(b.ns:attach(name, 7))
      assert.equal(7, made:size())
      assert.equal(0, made:version())
      made:close()
    end)

    it("refuses bad names with INVALID and bad sizes with INVALID_SIZE", function()
      for _, name in ipairs({ "", string.rep("a", 65), ".x", "-x", "a/b", "a b", "a\0b",
        "a{b}" }) do
        b.refuses(lxshm.INVALID, "~invalid name", b.ns:create(name, 8))
        b.refuses(lxshm.INVALID, "~invalid name", b.ns:open(name))
        b.refuses(lxshm.INVALID, "~invalid name", b.ns:remove(name))
      end
      local name = b.name("size")
      for _, size in ipairs({ 0, -1, 1.5, 0 / 0, math.huge, 2 ^ 41 }) do
        local r, err, code = b.ns:create(name, size)
        assert.is_nil(r)
        assert.equal(lxshm.INVALID_SIZE, code)
        assert.equal(name .. ": size must be a whole number of bytes from 1 to 1099511627776", err)
      end
    end)

    it("raises on arguments of the wrong type, as the local module does", function()
      local name = b.name("args")
      for _, case in ipairs({
        { function() b.ns:create({}, 8) end,
          "bad argument #1 to 'create' (string expected, got table)" },
        { function() b.ns:create(name, "x") end,
          "bad argument #2 to 'create' (number expected, got string)" },
        { function() b.ns:create(name, 8, 1) end,
          "bad argument #3 to 'create' (table expected, got number)" },
        { function() b.ns:create(name, 8, { mdoe = 1 }) end,
          "bad argument #3 to 'create' (unknown option 'mdoe')" },
        { function() b.ns:open(name, { readonly = 1 }) end,
          "bad argument #2 to 'open' (option 'readonly' must be a boolean)" },
        { function() b.ns:remove(nil) end,
          "bad argument #1 to 'remove' (string expected, got nil)" },
      }) do
        assert.has_error(case[1], case[2])
      end
      local seg = segment(16)
      for _, case in ipairs({
        { function() seg:write({}) end, "bad argument #1 to 'write' (string expected, got table)" },
        { function() seg:write("x", -1) end,
          "bad argument #2 to 'write' (timeout must be a number of seconds >= 0)" },
        { function() seg:put() end, "bad argument #1 to 'put' (value expected)" },
        { function() seg:wait("x") end,
          "bad argument #1 to 'wait' (number expected, got string)" },
        { function() seg:wait(0, 0 / 0) end,
          "bad argument #2 to 'wait' (timeout must be a number of seconds >= 0)" },
        { function() seg:update(1) end,
          "bad argument #1 to 'update' (function expected, got number)" },
      }) do
        assert.has_error(case[1], case[2])
      end
      seg:close()
      for _, m in ipairs({ "write", "read", "put", "get", "version", "wait", "update", "stat",
        "size", "name" }) do
        assert.has_error(function() seg[m](seg, "x") end, "attempt to use a closed lxshm segment")
      end
      seg:close() -- idempotent
      assert.matches("%(closed%)$", tostring(seg))
    end)

    it("stores raw bytes and values; the version grows by one per commit", function()
      local seg = segment(64)
      assert.equal(0, seg:version())
      assert.equal("", seg:read())
      assert.is_nil(seg:get())
      assert.is_true(seg:write("a\0b"))
      assert.equal(1, seg:version())
      assert.equal("a\0b", seg:read())
      assert.equal("a\0b", seg:get())
      assert.is_true(seg:put({ x = 1, list = { 1, 2.5, "three" } }))
      assert.equal(2, seg:version())
      assert.same({ x = 1, list = { 1, 2.5, "three" } }, seg:get())
      assert.equal(lxshm.encode({ x = 1, list = { 1, 2.5, "three" } }), seg:read())
      assert.is_true(seg:put(nil))
      assert.equal(3, seg:version())
      assert.is_nil(seg:get())
    end)

    it("round-trips every corpus value, byte for byte as lxshm.encode makes it", function()
      local seg = segment(2097152)
      for _, item in ipairs(b.corpus()) do
        assert.is_true(seg:put(item.value))
        assert.is_true(b.same(item.value, seg:get()), item.name)
        assert.equal(lxshm.encode(item.value), seg:read(), item.name)
      end
    end)

    it("refuses a value larger than the size or unstorable, changing nothing", function()
      local seg = segment(8)
      assert(seg:write("12345678"))
      b.refuses(lxshm.INVALID_SIZE, "~^" .. seg:name():gsub("%p", "%%%0") .. ": ",
        seg:write("123456789"))
      b.refuses(lxshm.UNSUPPORTED, seg:name() .. ": value at .f is a function",
        seg:put({ f = print }))
      b.refuses(lxshm.INVALID_SIZE, nil, seg:put(string.rep("x", 9)))
      assert.equal("12345678", seg:read())
      assert.equal(1, seg:version())
    end)

    it("update stores what fn returns; a raising fn stores nothing", function()
      local seg, name = segment(64)
      assert.equal(1, seg:update(function(x) return (x or 0) + 1 end))
      assert.equal(2, seg:update(function(x) return x + 1 end))
      assert.equal(2, seg:version())
      assert.has_error(function()
        seg:update(function() error("nope", 0) end)
      end, "nope")
      assert.equal(2, seg:get())
      assert.equal(2, seg:version())
      b.refuses(lxshm.UNSUPPORTED, nil, seg:update(function() return print end))
      assert.equal(2, seg:get())
      assert.has_error(function()
        seg:update(function() seg:put(1) end)
      end)
      -- Through another handle of the same segment it raises too; on Redis, whose update
      -- retries on a conflict, it made every try conflict, for ever without a timeout.
      local other = assert(b.ns:open(name))
      util.defer(function() other:close() end)
      for _, change in ipairs({
        function() other:put(1) end,
        function() other:write("x") end,
        function() other:update(function() return 1 end) end,
      }) do
        local ok, err = pcall(seg.update, seg, function(v)
          change()
          return v
        end, 1) -- a timeout: without the check, Redis would retry till then
        assert.is_false(ok)
        assert.matches(b.redis and "cannot change a segment inside its own update"
          or "lock already held by this thread", err)
      end
      assert.equal(2, seg:get())
      assert.equal(2, seg:version())
    end)

    it("update from several processes at once: no increment lost, version grows by exactly N",
      function()
        local seg, name = segment(64)
        assert(seg:put(0))
        local children = {}
        for i = 1, 3 do
          children[i] = b.child("seg_count", name, 40)
        end
        local calls = 0
        for _, c in ipairs(children) do
          calls = calls + tonumber(c:finish(60):match("calls (%d+)"))
        end
        assert.equal(120, seg:get())
        assert.equal(121, seg:version()) -- the first put, then exactly 120 updates
        if b.redis then
          assert.is_true(calls >= 120) -- optimistic: fn may run again after a conflict
        else
          assert.equal(120, calls) -- under the lock: once each
        end
      end)

    it("wait returns at once for another version, times out, and wakes on a commit", function()
      local seg, name = segment(64)
      assert.equal(0, seg:wait(5, 1)) -- differs from 0: at once
      b.refuses(lxshm.TIMEOUT, name .. ": no new version within 0 s", seg:wait(0, 0))
      local t0 = util.proc.now()
      local v, _, code = seg:wait(0, 0.2)
      local took = util.proc.now() - t0
      assert.is_nil(v)
      assert.equal(lxshm.TIMEOUT, code)
      assert.is_true(took >= 0.19 and took < 0.2 + 0.5 * util.SLOW, "took " .. took)
      local c = b.child("seg_wait", name, 0, 30)
      c:await("waiting")
      assert(seg:put("hello"))
      assert.equal("version 1", c:finish():match("version %d+"))
    end)

    it("stat tells name, size, used, version, writer_pid, updated, waiters", function()
      local seg, name = segment(64)
      local st = seg:stat()
      assert.same({ name = name, size = 64, used = 0, version = 0, writer_pid = 0, updated = 0,
        waiters = 0 }, st)
      local before = util.proc.wallclock()
      assert(seg:write("abc"))
      st = seg:stat()
      assert.equal(3, st.used)
      assert.equal(1, st.version)
      assert.equal(util.proc.pid(), st.writer_pid)
      local after = util.proc.wallclock()
      -- the same clock as the writer's, read before the write and after stat; 10 us of slack for
      -- Redis, which keeps updated to the microsecond
      assert.is_true(st.updated >= before - 1e-5 and st.updated <= after + 1e-5,
        ("updated %.6f, expected between %.6f and %.6f (the wall clock before the write and"
          .. " after stat)"):format(st.updated, before, after))
      local c = b.child("seg_wait", name, 1, 30)
      c:await("waiting")
      util.eventually(function() return seg:stat().waiters == 1 end, 10, "one waiter")
      assert(seg:write("x"))
      c:finish()
    end)

    it("opened read-only: reading works, changing returns PERMISSION", function()
      local seg, name = segment(16)
      assert(seg:write("v"))
      local ro = assert(b.ns:open(name, { readonly = true }))
      util.defer(function() ro:close() end)
      assert.equal("v", ro:read())
      for _, call in ipairs({
        function() return ro:write("x") end,
        function() return ro:put(1) end,
        function() return ro:update(function() return 1 end) end,
      }) do
        local ok, _, code = call()
        assert.is_nil(ok)
        assert.equal(lxshm.PERMISSION, code)
      end
      assert.equal("v", seg:read())
    end)

    it("after remove, a handle already open keeps its value (shm:) or reports NOT_FOUND (Redis)",
      function()
        local seg, name = segment(16)
        assert(seg:write("kept"))
        assert(b.ns:remove(name))
        local again = assert(b.ns:create(name, 16)) -- a new, empty segment
        util.defer(function() again:close() end)
        assert.equal(0, again:version())
        if b.redis then
          local v, _, code = seg:read()
          assert.is_nil(v)
          assert.equal(lxshm.NOT_FOUND, code)
          local ok
          ok, _, code = seg:write("x")
          assert.is_nil(ok)
          assert.equal(lxshm.NOT_FOUND, code)
        else
          assert.equal("kept", seg:read())
          assert(seg:write("x"))
        end
        assert.equal("", again:read())
      end)
  end)
end
