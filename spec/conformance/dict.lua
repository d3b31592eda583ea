--- Conformance: dictionaries (SPEC §9) through a namespace, on every backend
-- (spec/conformance_spec). While this build's core has no dictionaries, the shm: block asserts
-- that the namespace says so (UNSUPPORTED) instead.
local lxshm = require("lxshm")
local util = require("util")
local proc = util.proc

return function(b)
  describe("dictionaries", function()
    if not b.redis and not lxshm.create_dict then
      it("are not in this build's core: the namespace says UNSUPPORTED", function()
        local d, err, code = b.ns:create_dict(util.name("d"), 16384)
        assert.is_nil(d)
        assert.equal(lxshm.UNSUPPORTED, code)
        assert.equal("create_dict: not in this build of lxshm", err)
      end)
      return
    end

    local function dict(size, tag)
      local name = b.name(tag or "d")
      local d = assert(b.ns:create_dict(name, size or 65536))
      util.defer(function() d:close() end)
      return d, name
    end

    it("create, open, attach and remove give the usual results and codes", function()
      local name = b.name("dlife")
      local d = assert(b.ns:create_dict(name, 65536))
      assert.is_true(d:capacity() >= 65536)
      if b.redis then
        assert.equal(65536, d:capacity()) -- Redis reserves nothing: capacity is what was asked
      end
      assert.equal("lxshm.dict: " .. name .. " (" .. d:capacity() .. " bytes, 0 keys)",
        tostring(d))
      assert.equal("lxshm.dict", getmetatable(d).__name)
      b.refuses(lxshm.EXISTS, name .. ": already exists", b.ns:create_dict(name, 65536))
      local other = assert(b.ns:attach_dict(name, 100))
      assert(d:set("k", 1))
      assert.equal(1, other:get("k"))
      other:close()
      b.refuses(lxshm.INVALID, name .. ": is a dict, not a segment (use open_dict)",
        b.ns:open(name))
      d:close()
      assert(b.ns:remove(name))
      b.refuses(lxshm.NOT_FOUND, nil, b.ns:open_dict(name))
    end)

    it("set, get, delete; every change gives the key a new version, never reused", function()
      local d = dict()
      assert.is_nil(d:get("a"))
      assert.equal(0, d:version("a"))
      local ok, evicted = d:set("a", { x = 1 })
      assert.is_true(ok)
      assert.equal(0, evicted)
      local v, ver1 = d:get("a")
      assert.same({ x = 1 }, v)
      assert.is_true(ver1 > 0)
      assert.equal(ver1, d:version("a"))
      assert(d:set("a", "two"))
      local ver2 = d:version("a")
      assert.is_true(ver2 ~= ver1)
      assert.is_true(d:delete("a"))
      assert.is_true(d:delete("a")) -- absent: true all the same
      assert.equal(0, d:version("a"))
      assert.is_nil(d:get("a"))
      assert(d:set("a", 3))
      local ver3 = d:version("a")
      assert.is_true(ver3 ~= ver1 and ver3 ~= ver2)
      assert(d:set("a", nil)) -- nil deletes
      assert.is_nil(d:get("a"))
    end)

    it("keys are strings, integers, floats and booleans; 1.0 is the key 1", function()
      local d = dict()
      assert(d:set("s", "string"))
      assert(d:set(1, "one"))
      assert(d:set(2.5, "two and a half"))
      assert(d:set(true, "yes"))
      assert(d:set(false, "no"))
      assert(d:set("a\0b", "zero inside"))
      assert.equal("one", d:get(1.0))
      assert(d:set(1.0, "one again"))
      assert.equal("one again", d:get(1))
      assert.equal("two and a half", d:get(2.5))
      assert.equal("yes", d:get(true))
      assert.equal("no", d:get(false))
      assert.equal("zero inside", d:get("a\0b"))
      assert.equal(6, d:count())
      local seen = {}
      for _, k in ipairs(d:keys()) do
        seen[#seen + 1] = type(k) .. ":" .. tostring(k)
      end
      table.sort(seen)
      assert.same({ "boolean:false", "boolean:true", "number:1", "number:2.5", "string:a\0b",
        "string:s" }, seen)
      for _, k in ipairs(d:keys()) do
        if k == 1 and math.type then -- Lua 5.3 and later tell integers from floats
          assert.equal("integer", math.type(k))
        end
      end
    end)

    it("refuse bad keys: raise for nil, NaN and other types; INVALID_SIZE for bad lengths",
      function()
        local d, name = dict(1048576)
        assert.has_error(function() d:get(nil) end,
          "bad argument #1 to 'get' (key expected (string, number or boolean), got nil)")
        assert.has_error(function() d:set({}, 1) end,
          "bad argument #1 to 'set' (key expected (string, number or boolean), got table)")
        assert.has_error(function() d:set(0 / 0, 1) end, "bad argument #1 to 'set' (key is NaN)")
        for _, key in ipairs({ "", string.rep("k", 65536) }) do
          b.refuses(lxshm.INVALID_SIZE,
            name .. (": key of %d bytes: keys are 1 to 65535 bytes"):format(#key), d:set(key, 1))
        end
        assert(d:set(string.rep("k", 65535), "longest"))
        assert.equal("longest", d:get(string.rep("k", 65535)))
        assert.has_error(function() d:set("k", 1, -1) end,
          "bad argument #3 to 'set' (ttl must be a number of seconds >= 0)")
        assert.has_error(function() d:cas("k", "x", 1) end,
          "bad argument #2 to 'cas' (number expected, got string)")
        assert.has_error(function() d:update("k") end,
          "bad argument #2 to 'update' (function expected, got no value)")
        d:close()
        assert.has_error(function() d:get("k") end, "attempt to use a closed lxshm dict")
      end)

    it("add, replace, safe_* and cas keep their conditions", function()
      local d, name = dict()
      b.refuses(lxshm.NOT_FOUND, name .. ": no such key", d:replace("k", 1))
      assert.is_true(d:add("k", 1))
      b.refuses(lxshm.EXISTS, name .. ": key exists", d:add("k", 2))
      b.refuses(lxshm.EXISTS, name .. ": key exists", d:safe_add("k", 2))
      assert.is_true(d:replace("k", 3))
      assert.is_true(d:safe_set("k", 4))
      assert.equal(4, d:get("k"))
      local ver = d:version("k")
      local ok, newver = d:cas("k", ver, 5)
      assert.is_true(ok)
      assert.equal(d:version("k"), newver)
      b.refuses(lxshm.CONFLICT, ("%s: the key's version is %d, not %d"):format(name, newver, ver),
        d:cas("k", ver, 6))
      assert.equal(5, d:get("k"))
      assert.is_true(d:cas("new", 0, "fresh")) -- 0: must be absent
      b.refuses(lxshm.CONFLICT, nil, d:cas("new", 0, "again"))
    end)

    it("incr adds atomically; integers stay integers; absent needs init", function()
      local d, name = dict()
      b.refuses(lxshm.NOT_FOUND, name .. ": no such key", d:incr("n", 1))
      assert.equal(11, d:incr("n", 1, 10))
      local twelve = d:incr("n", 1)
      assert.equal(12, twelve)
      assert.equal(14.5, d:incr("n", 2.5))
      local fifteen = d:incr("n", 0.5)
      assert.equal(15, fifteen)
      if math.type then -- Lua 5.3 and later: an integer plus an integer stays one
        assert.equal("integer", math.type(twelve))
        assert.equal("float", math.type(fifteen))
      else -- doubles only: the sums are numbers equal to them (asserted above); 12 is stored
        assert.equal("0c", util.hex(lxshm.encode(twelve))) -- as the integer it is
      end
      assert(d:set("s", "text"))
      b.refuses(lxshm.INVALID, name .. ": value is not a number", d:incr("s", 1))
      if math.maxinteger then -- 5.3 and later: wraps as Lua does
        assert.equal(math.mininteger, d:incr("w", 1, math.maxinteger))
      else -- doubles only (5.1, 5.2, LuaJIT): Lua sees the nearest double of the sum, but
        -- every backend counts in 64-bit integers: 2^53 + 1 is stored, and one more is 2^53 + 2,
        -- which a double holds again.
        assert.equal(2 ^ 53, d:incr("w", 1, 2 ^ 53))
        assert.equal(2 ^ 53 + 2, d:incr("w", 1))
      end
    end)

    it("incr and update from several processes lose no change", function()
      local d, name = dict()
      local children = {}
      for i = 1, 3 do
        children[i] = b.child("d_incr", name, "hits", 50)
        children[i + 3] = b.child("d_update", name, "count", 30)
      end
      for _, c in ipairs(children) do
        c:finish(60)
      end
      assert.equal(150, d:get("hits"))
      assert.equal(90, d:get("count"))
    end)

    it("update stores fn's result, deletes on nil, changes nothing when fn raises", function()
      local d = dict()
      assert.equal(1, d:update("u", function(x)
        assert.is_nil(x)
        return 1
      end))
      assert.equal(2, d:update("u", function(x) return x + 1 end))
      local ver = d:version("u")
      assert.has_error(function() d:update("u", function() error("no", 0) end) end, "no")
      assert.equal(2, d:get("u"))
      assert.equal(ver, d:version("u"))
      assert.has_error(function()
        d:update("u", function(x)
          d:set("other", 1)
          return x
        end)
      end)
      assert.is_nil(d:update("u", function() return nil end))
      assert.is_nil(d:get("u"))
    end)

    it("ttl: keys expire, absent to every method at once; expire sets and clears", function()
      local d, name = dict()
      assert(d:set("t", "short", 0.05))
      assert(d:set("p", "forever"))
      local left = d:ttl("t")
      assert.is_true(left > 0 and left <= 0.05, left)
      assert.equal(math.huge, d:ttl("p"))
      local _, err, code = d:ttl("none")
      assert.equal(lxshm.NOT_FOUND, code)
      assert.equal(name .. ": no such key", err)
      util.eventually(function() return d:get("t") == nil end, 5, "t to expire")
      assert.equal(0, d:version("t"))
      assert.equal(1, d:count())
      assert.same({ "p" }, d:keys())
      assert.is_true(d:expire("p", 10))
      left = d:ttl("p")
      assert.is_true(left > 9 and left <= 10, left)
      assert.is_true(d:expire("p", 0))
      assert.equal(math.huge, d:ttl("p"))
      _, _, code = d:expire("none", 1)
      assert.equal(lxshm.NOT_FOUND, code)
      assert(d:set("e", 1, 0.01))
      util.eventually(function() return d:get("e") == nil end, 5, "e to expire")
      -- Redis: a TTL this long made an expiry time that its Lua printed as "9.0017e+15"; the
      -- script failed halfway, leaving the value stored but not counted
      for _, ttl in ipairs({ math.huge, 1e12 }) do
        assert(d:set("long", "lives", ttl))
        assert.equal("lives", d:get("long"))
        assert.is_true(d:ttl("long") > 1e9)
        assert.equal(2, d:count())
        assert.is_true(d:check())
      end
      assert.is_true(d:flush_expired() >= 1)
      assert.is_true(d:check())
    end)

    it("keys, pairs and count walk the present keys, each once", function()
      local d = dict(1048576)
      local want = {}
      for i = 1, 300 do
        assert(d:set("k" .. i, i))
        want["k" .. i] = i
      end
      assert.equal(300, d:count())
      assert.equal(300, #d:keys())
      assert.equal(10, #d:keys(10))
      local got, n = {}, 0
      for k, v in d:pairs() do
        assert.is_nil(got[k], "twice")
        got[k] = v
        n = n + 1
      end
      assert.equal(300, n)
      assert.same(want, got)
    end)

    it("evict old keys when full; safe_set refuses with FULL; flush_all frees everything",
      function()
        local d, name = dict(16384)
        local free0 = d:free_space()
        local evicted = 0
        local big = string.rep("v", 1000)
        for i = 1, 100 do
          local ok, e = d:set("k" .. i, big)
          assert.is_true(ok)
          evicted = evicted + e
        end
        assert.is_true(evicted > 0)
        assert.equal(evicted, d:stat().evictions)
        assert.is_true(d:count() < 100)
        assert.equal(100 - evicted, d:count())
        for _, k in ipairs(d:keys()) do
          assert.equal(big, d:get(k))
        end
        assert.is_true(d:check())
        b.refuses(lxshm.FULL, "~^" .. name:gsub("%p", "%%%0") .. ": no room for a key and value",
          d:safe_set("extra", big))
        b.refuses(lxshm.INVALID_SIZE, nil, d:set("huge", string.rep("x", 20000)))
        assert.is_true(d:flush_all())
        assert.equal(0, d:count())
        assert.equal(free0, d:free_space())
        assert.is_true(d:check())
      end)

    it("wait wakes on a change of its key by another process, and times out", function()
      local d, name = dict()
      assert(d:set("w", 1))
      local ver = d:version("w")
      local v, err, code = d:wait("w", ver, 0.05)
      assert.is_nil(v)
      assert.equal(lxshm.TIMEOUT, code)
      assert.equal(name .. ": no new version within 0.05 s", err)
      assert.equal(ver, d:wait("w", ver + 1000, 1)) -- differs: at once
      local c = b.child("d_wait", name, "w", ver, 30)
      c:await("waiting")
      util.eventually(function() return d:stat().waiters == 1 end, 10, "a waiter")
      assert(d:set("other", 1)) -- another key: the waiter goes back to sleep
      proc.sleep(0.05)
      assert.is_false(c:said("version " .. d:version("other")))
      assert(d:set("w", 2))
      assert.equal("version " .. d:version("w"), c:finish():match("version %d+"))
    end)

    it("stat tells name, capacity, used, free, count, evictions, expirations, version",
      function()
        local d, name = dict(65536)
        assert(d:set("a", 1))
        local st = d:stat()
        assert.equal(name, st.name)
        assert.equal(d:capacity(), st.capacity)
        assert.equal(1, st.count)
        -- free is free_space(); used counts bookkeeping too where the backend has any: at most
        -- the rest of the capacity is free.
        assert.equal(d:free_space(), st.free)
        assert.is_true(st.used > 0 and st.used + st.free <= st.capacity)
        assert.equal(0, st.evictions)
        assert.equal(0, st.waiters)
        assert.is_true(st.version > 0)
      end)

    it("opened read-only: reading works, changing returns PERMISSION", function()
      local d, name = dict()
      assert(d:set("k", "v"))
      local ro = assert(b.ns:open_dict(name, { readonly = true }))
      util.defer(function() ro:close() end)
      assert.equal("v", ro:get("k"))
      for _, call in ipairs({
        function() return ro:set("k", 1) end,
        function() return ro:delete("k") end,
        function() return ro:incr("n", 1, 0) end,
        function() return ro:flush_all() end,
      }) do
        local ok, _, code = call()
        assert.is_nil(ok)
        assert.equal(lxshm.PERMISSION, code)
      end
      assert.equal("v", d:get("k"))
    end)
  end)
end
