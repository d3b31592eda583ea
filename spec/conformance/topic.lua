--- Conformance: topics (SPEC §10) through a namespace, on every backend (spec/conformance_spec).
-- While this build's core has no topics, the shm: block asserts that the namespace says so.
local lxshm = require("lxshm")
local util = require("util")

return function(b)
  describe("topics", function()
    if not b.redis and not lxshm.create_topic then
      it("are not in this build's core: the namespace says UNSUPPORTED", function()
        local t, err, code = b.ns:create_topic(util.name("t"), 4096)
        assert.is_nil(t)
        assert.equal(lxshm.UNSUPPORTED, code)
        assert.equal("create_topic: not in this build of lxshm", err)
      end)
      return
    end

    local function topic(size, opts, tag)
      local name = b.name(tag or "t")
      local t = assert(b.ns:create_topic(name, size or 65536, opts))
      util.defer(function() t:close() end)
      return t, name
    end

    it("create, open, attach and remove give the usual results and codes", function()
      local name = b.name("tlife")
      local t = assert(b.ns:create_topic(name, 4096))
      assert.equal(4096, t:size())
      assert.equal(0, t:last())
      assert.equal("lxshm.topic: " .. name .. " (4096 bytes, last 0)", tostring(t))
      assert.equal("lxshm.topic", getmetatable(t).__name)
      b.refuses(lxshm.EXISTS, name .. ": already exists", b.ns:create_topic(name, 4096))
      local other = assert(b.ns:attach_topic(name, 99))
      assert.equal(4096, other:size())
      other:close()
      b.refuses(lxshm.INVALID, name .. ": is a topic, not a queue (use open_topic)",
        b.ns:open_queue(name))
      t:close()
      assert(b.ns:remove(name))
      b.refuses(lxshm.NOT_FOUND, nil, b.ns:open_topic(name))
    end)

    it("number messages from 1; subscribe from new, oldest or a sequence number", function()
      local t = topic()
      local early = assert(t:subscribe("oldest"))
      assert.equal(1, t:publish("a"))
      local new = assert(t:subscribe())
      assert.equal(2, new:position())
      assert.equal(2, t:publish({ b = 2 }))
      assert.equal(5, t:publish_many({ "c", false, "e" }))
      assert.equal(5, t:publish_many({}))
      assert.equal(6, t:publish(nil))
      local v, seq, lost = early:next(0)
      assert.equal("a", v)
      assert.equal(1, seq)
      assert.equal(0, lost)
      v, seq = new:next(0)
      assert.same({ b = 2 }, v)
      assert.equal(2, seq)
      local values, n, first, lost2 = new:next_many(3, 0)
      assert.equal(3, n)
      assert.equal(3, first)
      assert.equal(0, lost2)
      assert.same({ "c", false, "e" }, values)
      v, seq = new:next(0) -- a published nil comes back as nil, seq, lost
      assert.is_nil(v)
      assert.equal(6, seq)
      local from4 = assert(t:subscribe(4))
      v, seq = from4:next(0)
      assert.is_false(v)
      assert.equal(4, seq)
      b.refuses(lxshm.TIMEOUT, t:name() .. ": no new message", new:next(0))
      b.refuses(lxshm.TIMEOUT, t:name() .. ": no new message after 0.02 s", new:next(0.02))
    end)

    it("drop the oldest messages when full; a late subscriber counts what it lost", function()
      local t = topic(1024)
      local sub = assert(t:subscribe("oldest"))
      for i = 1, 200 do
        assert.equal(i, t:publish(("%05d"):format(i)))
      end
      local st = t:stat()
      assert.equal(200, st.last)
      assert.is_true(st.oldest > 1)
      local got, lost_total, expect = 0, 0, 1
      while true do
        local v, seq, lost = sub:next(0)
        if not v then
          break
        end
        lost_total = lost_total + lost
        assert.equal(expect + lost, seq)
        assert.equal(("%05d"):format(seq), v)
        expect = seq + 1
        got = got + 1
      end
      assert.equal(st.oldest - 1, lost_total)
      assert.equal(200, got + lost_total)
    end)

    it("refuse too large or unstorable messages, publishing nothing", function()
      local t, name = topic(256)
      b.refuses(lxshm.INVALID_SIZE, nil, t:publish(string.rep("x", 300)))
      b.refuses(lxshm.UNSUPPORTED, name .. ": value at .f is a function", t:publish({ f = print }))
      b.refuses(lxshm.UNSUPPORTED, name .. ": item 3: value is a function",
        t:publish_many({ 1, 2, print }))
      assert.equal(0, t:last())
    end)

    it("named subscriptions resume where the last holder stopped", function()
      local t, name = topic(65536, { cursors = 2 })
      assert(t:publish_many({ 1, 2, 3, 4, 5 }))
      local s1 = assert(t:subscribe({ name = "w", from = "oldest" }))
      assert.equal("w", s1:name())
      assert.equal(1, s1:next(0))
      assert.equal(2, s1:next(0))
      b.refuses(lxshm.EXISTS,
        "~^" .. name:gsub("%p", "%%%0") .. ": subscription w is held by process %d+$",
        t:subscribe({ name = "w" }))
      s1:close()
      local s2 = assert(t:subscribe({ name = "w", from = "new" })) -- from: first time only
      assert.equal(3, s2:position())
      assert.equal(3, s2:next(0))
      -- Redis: a max past 2^31 reached XRANGE's COUNT as a float, which it refused
      local rest, n = s2:next_many(math.maxinteger or 2 ^ 53, 0)
      assert.equal(2, n)
      assert.same({ 4, 5 }, rest)
      assert(t:subscribe({ name = "x" })):close()
      b.refuses(lxshm.FULL, name .. ": no room for another named subscription (2 taken)",
        t:subscribe({ name = "y" }))
      b.refuses(lxshm.EXISTS, nil, t:unsubscribe("w"))
      s2:close()
      assert.is_true(t:unsubscribe("w"))
      b.refuses(lxshm.NOT_FOUND, name .. ": no subscription named w", t:unsubscribe("w"))
      b.refuses(lxshm.INVALID, "~invalid subscription name", t:subscribe({ name = "bad name" }))
      assert.equal(1, t:stat().subscribers)
    end)

    it("a named subscription whose holder was killed is taken over, losing nothing", function()
      local t, name = topic()
      assert(t:publish_many({ "a", "b", "c", "d" }))
      local c = b.child("t_named", name, "job", 2)
      c:await("holding")
      assert.is_true(c:said("1:a") and c:said("2:b"))
      b.refuses(lxshm.EXISTS, nil, t:subscribe({ name = "job" }))
      c:kill()
      c:wait()
      local sub
      util.eventually(function()
        sub = t:subscribe({ name = "job" })
        return sub
      end, 10, "the dead holder's name")
      local v, seq = sub:next(0)
      assert.equal("c", v)
      assert.equal(3, seq)
      sub:close()
    end)

    it("wake a subscriber blocked in next when another process publishes", function()
      local t, name = topic()
      local c = b.child("t_next", name, "new", 2, 30)
      c:await("subscribed")
      util.eventually(function() return t:stat().waiters == 1 end, 10, "a blocked subscriber")
      assert.equal(1, t:publish("one"))
      assert.equal(2, t:publish("two"))
      assert.equal("got 1:one 2:two", c:finish():match("got [^\n]+"))
    end)

    it("raise on bad arguments and on closed topics and subscriptions", function()
      local t = topic()
      local sub = assert(t:subscribe())
      for _, case in ipairs({
        { function() t:subscribe("soon") end,
          "bad argument #1 to 'subscribe' (from must be \"new\", \"oldest\" or a sequence "
            .. "number >= 1)" },
        { function() t:subscribe(0) end,
          "bad argument #1 to 'subscribe' (from must be \"new\", \"oldest\" or a sequence "
            .. "number >= 1)" },
        { function() t:subscribe({ from = "new" }) end,
          "bad argument #1 to 'subscribe' (a named subscription needs a name)" },
        { function() t:subscribe({ name = "n", bogus = 1 }) end,
          "bad argument #1 to 'subscribe' (unknown option 'bogus')" },
        { function() t:publish() end, "bad argument #1 to 'publish' (value expected)" },
        { function() t:publish_many(1) end,
          "bad argument #1 to 'publish_many' (table expected, got number)" },
        { function() sub:next(-1) end,
          "bad argument #1 to 'next' (timeout must be a number of seconds >= 0)" },
        { function() sub:next_many(0) end, "bad argument #1 to 'next_many' (must be at least 1)" },
        { function() t:unsubscribe() end,
          "bad argument #1 to 'unsubscribe' (string expected, got no value)" },
      }) do
        assert.has_error(case[1], case[2])
      end
      sub:close()
      assert.has_error(function() sub:next(0) end, "attempt to use a closed lxshm subscription")
      local other = assert(t:subscribe())
      t:close()
      assert.has_error(function() other:next(0) end, "attempt to use a closed lxshm topic")
      assert.has_error(function() t:publish(1) end, "attempt to use a closed lxshm topic")
    end)

    it("opened read-only: subscribing works, publishing and named subscriptions do not",
      function()
        local t, name = topic()
        local ro = assert(b.ns:open_topic(name, { readonly = true }))
        util.defer(function() ro:close() end)
        local sub = assert(ro:subscribe("oldest"))
        assert(t:publish("x"))
        assert.equal("x", sub:next(0))
        b.refuses(lxshm.PERMISSION, nil, ro:publish(1))
        b.refuses(lxshm.PERMISSION, nil, ro:subscribe({ name = "n" }))
      end)
  end)
end
