--- Conformance: queues (SPEC §5) through a namespace, on every backend (spec/conformance_spec).
local lxshm = require("lxshm")
local util = require("util")

return function(b)
  describe("queues", function()
    local function queue(size, tag)
      local name = b.name(tag or "q")
      local q = assert(b.ns:create_queue(name, size or 4096))
      util.defer(function() q:close() end)
      return q, name
    end

    it("start empty, with the size rounded up to whole 8-byte units", function()
      local q, name = queue(61)
      assert.equal(64, q:size())
      assert.equal(0, q:count())
      assert.equal(0, q:used())
      assert.equal("lxshm.queue: " .. name .. " (64 bytes, 0 values)", tostring(q))
      assert.equal("lxshm.queue", getmetatable(q).__name)
      assert.equal(name, q:name())
    end)

    it("pop values in push order, nil and tables included; peek leaves them", function()
      local q = queue()
      for _, v in ipairs({ 1, "two", { three = 3 }, 4.5, true }) do
        assert.is_true(q:push(v))
      end
      assert.is_true(q:push(nil))
      assert.equal(6, q:count())
      assert.equal(1, q:peek())
      assert.equal(1, q:pop())
      assert.equal("two", q:pop())
      assert.same({ three = 3 }, q:pop())
      assert.equal(4.5, q:pop())
      assert.is_true(q:pop())
      assert.equal(1, select("#", q:pop())) -- a pushed nil pops as nil alone
      assert.equal(0, q:count())
    end)

    it("report an empty queue with TIMEOUT, at once or after the timeout", function()
      local q, name = queue()
      b.refuses(lxshm.TIMEOUT, name .. ": queue is empty", q:pop(0))
      b.refuses(lxshm.TIMEOUT, name .. ": queue still empty after 0.02 s", q:pop(0.02))
      b.refuses(lxshm.TIMEOUT, name .. ": queue is empty", q:peek())
    end)

    it("refuse a push into a full queue with TIMEOUT, keeping what they hold", function()
      local q, name = queue(32) -- two records of 16 bytes
      assert(q:push(1))
      assert(q:push(2))
      b.refuses(lxshm.TIMEOUT, name .. ": queue is full", q:push(3, 0))
      b.refuses(lxshm.TIMEOUT, name .. ": queue still full after 0.01 s", q:push(3, 0.01))
      assert.equal(2, q:count())
      assert.equal(1, q:pop())
      assert.equal(2, q:pop())
    end)

    it("refuse a value larger than the whole queue, or unstorable, pushing nothing", function()
      local q, name = queue(64)
      assert(q:push("kept"))
      b.refuses(lxshm.INVALID_SIZE, "~^" .. name:gsub("%p", "%%%0") .. ": ",
        q:push(string.rep("x", 100)))
      b.refuses(lxshm.UNSUPPORTED, name .. ": value at .job.run is a function",
        q:push({ job = { run = print } }))
      assert.equal(1, q:count())
      assert.equal("kept", q:pop())
    end)

    it("count bytes in use as the local ring does: length + 8, padded to 8", function()
      local q = queue()
      assert(q:push("abc"))
      assert.equal(16, q:used())
      assert(q:push(string.rep("x", 40)))
      assert.equal(72, q:used())
      q:pop()
      assert.equal(56, q:used())
    end)

    it("report size, bytes in use, values and waiters in stat()", function()
      local q, name = queue(64)
      assert(q:push("abc"))
      assert.same({ name = name, size = 64, used = 16, count = 1, pop_waiters = 0,
        push_waiters = 0 }, q:stat())
    end)

    it("carry large values and every corpus value whole", function()
      local q = queue(4194304)
      for _, item in ipairs(b.corpus()) do
        assert(q:push(item.value))
      end
      for _, item in ipairs(b.corpus()) do
        assert.is_true(b.same(item.value, q:pop(0)), item.name)
      end
    end)

    it("push_many appends in order, all or nothing; pop_many takes up to max", function()
      local q, name = queue(64) -- four records of 16 bytes
      assert.is_true(q:push_many({}))
      assert.is_true(q:push_many({ 1, 2, 3 }))
      b.refuses(lxshm.TIMEOUT, nil, q:push_many({ 4, 5 }, 0.01))
      assert.equal(3, q:count())
      b.refuses(lxshm.UNSUPPORTED, name .. ": item 3: value is a function",
        q:push_many({ 7, 8, print }))
      local big = {}
      for i = 1, 40 do
        big[i] = i
      end
      b.refuses(lxshm.INVALID_SIZE, name .. ": 40 values take more than the queue's 64 bytes",
        q:push_many(big))
      assert.equal(1, q:pop())
      assert.is_true(q:push_many({ 4, 5 }, 0))
      local values, n = q:pop_many(10, 0)
      assert.equal(4, n)
      assert.same({ 2, 3, 4, 5 }, values)
      b.refuses(lxshm.TIMEOUT, name .. ": queue still empty after 0.01 s", q:pop_many(3, 0.01))
      -- Redis: a max past 2^31 reached LPOP as "9.2233720368548e+18", which it refused
      assert(q:push_many({ 6, 7 }))
      values, n = q:pop_many(math.maxinteger or 2 ^ 53, 0)
      assert.equal(2, n)
      assert.same({ 6, 7 }, values)
    end)

    -- The encoder's buffer is shared: a hook that encoded while push waited for room moved it,
    -- and the push then stored freed bytes (ASan: heap-use-after-free; both backends).
    it("push keeps its value while a hook encodes during its wait for room", function()
      local q = queue(64)
      local other = queue(1048576)
      local mine, big = string.rep("b", 40), string.rep("z", 200000)
      assert(q:push(string.rep("a", 40))) -- full
      local calls = 0
      debug.sethook(function()
        calls = calls + 1
        if calls == 2 then -- 1: push itself; 2: a call between its waits
          debug.sethook()
          assert(other:push(big)) -- needs a bigger buffer than the one push is holding
          assert(q:pop()) -- room for push
        end
      end, "c")
      local ok, err = q:push(mine, 0.5)
      debug.sethook()
      assert.is_true(ok, err)
      assert.is_true(calls >= 2)
      assert.equal(mine, q:pop())
      assert.equal(big, other:pop())
    end)

    it("raise on bad arguments and after close", function()
      local q = queue()
      for _, case in ipairs({
        { function() q:push() end, "bad argument #1 to 'push' (value expected)" },
        { function() q:push(1, -1) end,
          "bad argument #2 to 'push' (timeout must be a number of seconds >= 0)" },
        { function() q:pop(0 / 0) end,
          "bad argument #1 to 'pop' (timeout must be a number of seconds >= 0)" },
        { function() q:pop("soon") end, "bad argument #1 to 'pop' (number expected, got string)" },
        { function() q:push_many("x") end,
          "bad argument #1 to 'push_many' (table expected, got string)" },
        { function() q:pop_many(0) end, "bad argument #1 to 'pop_many' (must be at least 1)" },
        { function() q:pop_many(1.5) end,
          "bad argument #1 to 'pop_many' (number has no integer representation)" },
        { function() q:push_many(setmetatable({}, { __len = function() return 1 end })) end,
          "bad argument #1 to 'push_many' (a list with __len or __index: pass a plain table)" },
      }) do
        assert.has_error(case[1], case[2])
      end
      q:close()
      for _, m in ipairs({ "push", "pop", "peek", "count", "used", "size", "stat", "push_many",
        "pop_many" }) do
        assert.has_error(function() q[m](q, 1) end, "attempt to use a closed lxshm queue")
      end
    end)

    it("share the namespace: EXISTS, INVALID for the other kind, remove", function()
      local name = b.name("share")
      local q = assert(b.ns:create_queue(name, 64))
      b.refuses(lxshm.EXISTS, name .. ": already exists", b.ns:create(name, 64))
      b.refuses(lxshm.INVALID, name .. ": is a queue, not a segment (use open_queue)",
        b.ns:open(name))
      q:close()
      assert(b.ns:remove(name))
      local seg = assert(b.ns:create(name, 64))
      b.refuses(lxshm.INVALID, name .. ": is a segment, not a queue (use open)",
        b.ns:open_queue(name))
      seg:close()
    end)

    it("wake a blocked consumer when another process pushes", function()
      local q, name = queue()
      local c = b.child("q_pop", name, 30)
      c:await("popping")
      util.eventually(function() return q:stat().pop_waiters == 1 end, 10, "a pop waiter")
      assert(q:push("hello"))
      assert.equal("value hello", c:finish():match("value %S+"))
    end)

    it("wake a blocked producer when another process pops", function()
      local q, name = queue(16) -- one record
      assert(q:push("a"))
      local c = b.child("q_push", name, "b", 30)
      c:await("pushing")
      util.eventually(function() return q:stat().push_waiters == 1 end, 10, "a push waiter")
      assert.equal("a", q:pop())
      assert.equal("pushed", c:finish():match("pushed"))
      assert.equal("b", q:pop(10))
    end)

    it("deliver 3 producers x 200 values to 2 consumers exactly once, in order per producer",
      function()
        local q, name = queue(1024)
        local consumers, producers = {}, {}
        for i = 1, 2 do
          consumers[i] = b.child("q_consume", name)
        end
        for p = 1, 3 do
          producers[p] = b.child("q_produce", name, p, 200)
        end
        for _, c in ipairs(producers) do
          c:finish(60)
        end
        assert(q:push_many({ { stop = true }, { stop = true } }, 30))
        local seen, total = {}, 0
        for _, c in ipairs(consumers) do
          local last = {}
          for p, i in c:finish(60):gmatch("(%d+):(%d+)") do
            p, i = tonumber(p), tonumber(i)
            assert.is_nil(seen[p .. ":" .. i], "popped twice")
            seen[p .. ":" .. i] = true
            assert.is_true(i > (last[p] or 0), "out of order")
            last[p] = i
            total = total + 1
          end
        end
        assert.equal(600, total)
      end)
  end)
end
