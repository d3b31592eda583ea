--- Queues: values in order, each popped once, across real processes and through crashes.
local lxshm = require("lxshm")
local util = require("util")

after_each(util.cleanup)

--- Reads what each consumer printed ("id:seq" lines) and checks that no value was popped twice
-- and that each consumer saw every producer's values in push order. Returns how many there were.
local function exactly_once(consumers)
  local seen, total = {}, 0
  for _, consumer in ipairs(consumers) do
    local last = {}
    for id, seq in consumer:finish(60):gmatch("(%d+):(%d+)") do
      id, seq = tonumber(id), tonumber(seq)
      local key = id * 100000 + seq
      assert.is_nil(seen[key], "value " .. id .. ":" .. seq .. " popped twice")
      seen[key] = true
      assert.is_true(seq > (last[id] or 0), "producer " .. id .. "'s values out of order")
      last[id] = seq
      total = total + 1
    end
  end
  return total
end

describe("a queue in one process", function()
  it("starts empty, with its size rounded up to whole 8-byte units", function()
    local q = util.queue(100)
    assert.equal(104, q:size())
    assert.equal(0, q:count())
    assert.equal(0, q:used())
  end)

  it("gives the handle its name, a tostring and the __name lxshm.queue", function()
    local q, name = util.queue(100)
    assert.equal(name, q:name())
    assert.equal("lxshm.queue: " .. name .. " (104 bytes, 0 values)", tostring(q))
    assert.equal("lxshm.queue", getmetatable(q).__name)
  end)

  it("pops values in push order, nil and tables included", function()
    local q = util.queue()
    local values = { "one", 2, 3.5, { a = { 1, 2 } }, false, "", nil, "last" }
    for i = 1, 8 do
      assert.is_true(q:push(values[i]))
    end
    assert.equal(8, q:count())
    for i = 1, 8 do
      local n = select("#", q:pop())
      assert.equal(1, n, "pop " .. i) -- a popped nil comes with no second result
    end
    assert.equal(0, q:count())
    for i = 1, 8 do
      assert(q:push(values[i]))
    end
    for i = 1, 8 do
      assert.same(values[i], q:pop())
    end
  end)

  it("reports an empty queue to pop and peek with TIMEOUT, at once or after the timeout", function()
    local q, name = util.queue()
    local v, err, code = q:pop(0)
    assert.is_nil(v)
    assert.equal(lxshm.TIMEOUT, code)
    assert.equal(name .. ": queue is empty", err)
    v, err, code = q:pop(0.02)
    assert.is_nil(v)
    assert.equal(lxshm.TIMEOUT, code)
    assert.equal(name .. ": queue still empty after 0.02 s", err)
    v, err, code = q:peek()
    assert.is_nil(v)
    assert.equal(lxshm.TIMEOUT, code)
    assert.equal(name .. ": queue is empty", err)
  end)

  it("peeks at the oldest value without removing it", function()
    local q = util.queue()
    assert(q:push({ first = true }))
    assert(q:push("second"))
    assert.same({ first = true }, q:peek())
    assert.same({ first = true }, q:peek())
    assert.equal(2, q:count())
    assert.same({ first = true }, q:pop())
    assert.equal("second", q:peek())
  end)

  it("refuses a push into a full queue with TIMEOUT, keeping what it holds", function()
    local q, name = util.queue(64)
    local pushed = 0
    while q:push(("%07d"):format(pushed), 0) do
      pushed = pushed + 1
    end
    assert.equal(4, pushed) -- 8-byte header + 8 bytes of string: 16 bytes each
    local ok, err, code = q:push("more", 0.01)
    assert.is_nil(ok)
    assert.equal(lxshm.TIMEOUT, code)
    assert.equal(name .. ": queue still full after 0.01 s", err)
    for i = 0, pushed - 1 do
      assert.equal(("%07d"):format(i), q:pop())
    end
  end)

  it("refuses a value larger than the whole queue with INVALID_SIZE, without waiting", function()
    local q, name = util.queue(64)
    assert(q:push("kept"))
    local ok, err, code = q:push(string.rep("x", 100)) -- no timeout: must not wait
    assert.is_nil(ok)
    assert.equal(lxshm.INVALID_SIZE, code)
    assert.matches(name, err, 1, true)
    assert.equal(1, q:count())
    assert.equal("kept", q:pop())
  end)

  it("refuses what cannot be stored with UNSUPPORTED, pushing nothing", function()
    local q, name = util.queue()
    local ok, err, code = q:push({ job = { run = print } })
    assert.is_nil(ok)
    assert.equal(lxshm.UNSUPPORTED, code)
    assert.equal(name .. ": value at .job.run is a function", err)
    assert.equal(0, q:count())
  end)

  it("keeps values whole across the end of the ring, in every size", function()
    local q = util.queue(256)
    local expect, popped = {}, 0
    for i = 1, 2000 do
      local v = util.stamp(i, 8 + (i * 37) % 90)
      while not q:push(v, 0) do -- full: pop until it fits
        popped = popped + 1
        assert.equal(expect[popped], q:pop(0))
      end
      expect[i] = v
    end
    while q:count() > 0 do
      popped = popped + 1
      assert.equal(expect[popped], q:pop(0))
    end
    assert.equal(2000, popped)
    assert.equal(0, q:used())
  end)

  it("carries values larger than the small-value path", function()
    local q = util.queue(1024 * 1024)
    local big = { blob = string.rep("\0\1\2", 50000), list = {} }
    for i = 1, 3000 do
      big.list[i] = i * 0.5
    end
    assert(q:push(big))
    assert(q:push(string.rep("z", 70000)))
    assert.same(big, q:peek())
    assert.same(big, q:pop())
    assert.equal(string.rep("z", 70000), q:pop())
  end)

  it("counts bytes in use, headers and padding included", function()
    local q = util.queue()
    assert(q:push("abc")) -- 8 + 4 bytes, padded to 16
    assert.equal(16, q:used())
    assert(q:push(string.rep("x", 40))) -- 8 + 42 bytes, padded to 56
    assert.equal(72, q:used())
    q:pop()
    assert.equal(56, q:used())
  end)

  it("reports its size, bytes in use, values and waiters in stat()", function()
    local q, name = util.queue(64)
    assert(q:push("abc"))
    assert.same({ name = name, size = 64, used = 16, count = 1, pop_waiters = 0,
                  push_waiters = 0 }, q:stat())
  end)

  it("raises on no value, a negative, NaN or string timeout, and another object", function()
    local q = util.queue()
    assert.has_error(function() q:push() end, "bad argument #1 to 'push' (value expected)")
    assert.has_error(function() q:push(1, -1) end,
      "bad argument #2 to 'push' (timeout must be a number of seconds >= 0)")
    assert.has_error(function() q:pop(-0.5) end,
      "bad argument #1 to 'pop' (timeout must be a number of seconds >= 0)")
    assert.has_error(function() q:pop(0 / 0) end,
      "bad argument #1 to 'pop' (timeout must be a number of seconds >= 0)")
    assert.has_error(function() q:pop("soon") end,
      "bad argument #1 to 'pop' (number expected, got string)")
    assert.has_error(function() q.pop("x") end,
      "bad argument #1 to 'pop' (lxshm.queue expected, got string)")
  end)

  it("raises on any method after close, which is idempotent and shows in tostring", function()
    local q, name = util.queue()
    q:close()
    q:close()
    assert.equal("lxshm.queue: " .. name .. " (closed)", tostring(q))
    for _, m in ipairs({ "pop", "peek", "count", "size", "used", "name" }) do
      assert.has_error(function() q[m](q) end, "attempt to use a closed lxshm queue")
    end
    assert.has_error(function() q:push(1) end, "attempt to use a closed lxshm queue")
  end)
end)

describe("batches", function()
  it("push_many appends values in order and pop_many takes up to max of them", function()
    local q = util.queue(4096)
    assert.is_true(q:push_many({ "a", 2, { 3 } }))
    assert.is_true(q:push_many({ 4.5, "e" }))
    assert.equal(5, q:count())
    local values, n = q:pop_many(2)
    assert.equal(2, n)
    assert.same({ "a", 2 }, values)
    values, n = q:pop_many(100)
    assert.equal(3, n)
    assert.same({ { 3 }, 4.5, "e" }, values)
    assert.equal(0, q:count())
    assert.equal(0, q:used())
  end)

  it("mix with single pushes and pops, nil values leaving holes", function()
    local q = util.queue(4096)
    assert(q:push("first"))
    assert(q:push_many({ "x", "y" }))
    assert(q:push(nil))
    assert(q:push("last"))
    assert.equal("first", q:pop())
    local values, n = q:pop_many(10)
    assert.equal(4, n)
    assert.equal("x", values[1])
    assert.equal("y", values[2])
    assert.is_nil(values[3])
    assert.equal("last", values[4])
  end)

  it("push_many pushes nothing for an unstorable value (naming it) or an empty list", function()
    local q, name = util.queue(4096)
    assert(q:push("kept"))
    local ok, err, code = q:push_many({ 1, 2, { f = print }, 4 })
    assert.is_nil(ok)
    assert.equal(lxshm.UNSUPPORTED, code)
    assert.equal(name .. ": item 3: value at .f is a function", err)
    assert.equal(1, q:count())
    assert.is_true(q:push_many({}))
    assert.equal(1, q:count())
  end)

  it("push_many refuses a batch larger than the queue with INVALID_SIZE, at once", function()
    local q, name = util.queue(256)
    local big = {}
    for i = 1, 40 do
      big[i] = i -- 40 records of 16 bytes: 640 bytes
    end
    local ok, err, code = q:push_many(big) -- no timeout: must not wait
    assert.is_nil(ok)
    assert.equal(lxshm.INVALID_SIZE, code)
    assert.equal(name .. ": 40 values take more than the queue's 256 bytes", err)
    assert.equal(0, q:count())
  end)

  it("push_many needs room for the whole batch, and times out changing nothing", function()
    local q = util.queue(64) -- 4 records of 16 bytes
    assert(q:push_many({ 1, 2, 3 }))
    local ok, _, code = q:push_many({ 4, 5 }, 0.01)
    assert.is_nil(ok)
    assert.equal(lxshm.TIMEOUT, code)
    assert.equal(3, q:count())
    assert.equal(1, q:pop())
    assert.is_true(q:push_many({ 4, 5 }, 0))
    local values, n = q:pop_many(10, 0)
    assert.equal(4, n)
    assert.same({ 2, 3, 4, 5 }, values)
  end)

  it("pop_many times out when no value comes, and returns values bigger than its first buffer",
    function()
      local q, name = util.queue(1024 * 1024)
      local values, err, code = q:pop_many(5, 0.01)
      assert.is_nil(values)
      assert.equal(lxshm.TIMEOUT, code)
      assert.equal(name .. ": queue still empty after 0.01 s", err)
      local big = string.rep("b", 200 * 1024) -- larger than the first copy buffer
      assert(q:push_many({ big, "small" }))
      local got, n = q:pop_many(5)
      assert.equal(2, n)
      assert.equal(big, got[1])
      assert.equal("small", got[2])
    end)

  it("raise on a bad list, a count below 1 or fractional, and a negative timeout", function()
    local q = util.queue()
    assert.has_error(function() q:push_many() end,
      "bad argument #1 to 'push_many' (table expected, got no value)")
    assert.has_error(function() q:push_many("x") end,
      "bad argument #1 to 'push_many' (table expected, got string)")
    assert.has_error(function() q:push_many({ 1 }, -1) end,
      "bad argument #2 to 'push_many' (timeout must be a number of seconds >= 0)")
    assert.has_error(function() q:pop_many() end,
      "bad argument #1 to 'pop_many' (number expected, got no value)")
    assert.has_error(function() q:pop_many(0) end,
      "bad argument #1 to 'pop_many' (must be at least 1)")
    assert.has_error(function() q:pop_many(1.5) end,
      "bad argument #1 to 'pop_many' (number has no integer representation)")
    assert.has_error(function() q:pop_many(3, -1) end,
      "bad argument #2 to 'pop_many' (timeout must be a number of seconds >= 0)")
  end)

  it("deliver 4 producers x 5000 values to 3 consumers exactly once, in order", function()
    local q, name = util.queue(64 * 1024)
    local producers, consumers = {}, {}
    for c = 1, 3 do
      consumers[c] = util.child("consume_batches", name, 64)
    end
    for p = 1, 4 do
      producers[p] = util.child("produce_batches", name, p, 5000, 1 + p * 13)
    end
    for p = 1, 4 do
      producers[p]:finish(60)
    end
    assert(q:push_many({ "stop", "stop", "stop" }))
    assert.equal(20000, exactly_once(consumers))
    assert.equal(0, q:count())
  end)
end)

describe("queue names", function()
  it("share the segments' namespace: EXISTS, INVALID for the other kind, remove", function()
    local q, name = util.queue(64)
    local r, err, code = lxshm.create_queue(name, 64)
    assert.is_nil(r)
    assert.equal(lxshm.EXISTS, code)
    assert.equal(name .. ": already exists", err)
    r, err, code = lxshm.create(name, 64)
    assert.is_nil(r)
    assert.equal(lxshm.EXISTS, code)
    assert.equal(name .. ": already exists", err)
    r, err, code = lxshm.open(name)
    assert.is_nil(r)
    assert.equal(lxshm.INVALID, code)
    assert.equal(name .. ": is a queue, not a segment (use open_queue)", err)
    local sname = util.name("s")
    local seg = assert(lxshm.create(sname, 64))
    util.defer(function()
      seg:close()
      lxshm.remove(sname)
    end)
    r, err, code = lxshm.open_queue(sname)
    assert.is_nil(r)
    assert.equal(lxshm.INVALID, code)
    assert.equal(sname .. ": is a segment, not a queue (use open)", err)
    local other = assert(lxshm.open_queue(name))
    assert(q:push("shared"))
    assert.equal("shared", other:pop(0))
    other:close()
    assert.is_true(lxshm.remove(name))
    r, err, code = lxshm.open_queue(name)
    assert.is_nil(r)
    assert.equal(lxshm.NOT_FOUND, code)
    assert.equal(name .. ": does not exist", err)
  end)

  it("refuse bad names and sizes like segments; raise on non-number sizes, bad options", function()
    local _, err, code = lxshm.create_queue("a/b", 64)
    assert.equal(lxshm.INVALID, code)
    assert.matches("invalid name", err)
    _, _, code = lxshm.open_queue("")
    assert.equal(lxshm.INVALID, code)
    for _, size in ipairs({ 0, -8, 1.5, 0 / 0, 2 ^ 41 }) do
      _, _, code = lxshm.create_queue(util.name("qs"), size)
      assert.equal(lxshm.INVALID_SIZE, code)
    end
    assert.has_error(function() lxshm.create_queue(util.name("qs"), {}) end,
      "bad argument #2 to 'create_queue' (number expected, got table)")
    assert.has_error(function() lxshm.create_queue(util.name("qs"), 64, { bad = 1 }) end,
      "bad argument #3 to 'create_queue' (unknown option 'bad')")
  end)
end)

describe("a queue across processes", function()
  it("delivers 4 producers x 5000 values to 3 consumers exactly once, in order", function()
    local q, name = util.queue(64 * 1024)
    local producers, consumers = {}, {}
    for c = 1, 3 do
      consumers[c] = util.child("consume", name)
    end
    for p = 1, 4 do
      producers[p] = util.child("produce", name, p, 5000)
    end
    for p = 1, 4 do
      producers[p]:finish(60)
    end
    for _ = 1, 3 do
      assert(q:push("stop"))
    end
    assert.equal(20000, exactly_once(consumers))
    assert.equal(0, q:count())
  end)

  it("keeps every value of two producers racing with timeout 0 on a roomy queue", function()
    local q, name = util.queue(4 * 1024 * 1024) -- room for everything: no push should wait
    local gate = util.gate()
    local a = util.child("produce_nowait", name, 1, 100000, gate)
    local b = util.child("produce_nowait", name, 2, 100000, gate)
    a:await("ready")
    b:await("ready")
    util.open_gate(gate)
    a:finish(60)
    b:finish(60)
    assert.equal(200000, q:count())
  end)

  it("wakes a blocked consumer when another process pushes", function()
    local q, name = util.queue()
    local consumer = util.child("pop", name, 10)
    util.eventually(function() return q:stat().pop_waiters == 1 end, 10, "a blocked pop")
    assert(q:push("hello"))
    assert.equal("popping\nhello", consumer:finish())
  end)

  it("wakes a blocked producer when another process pops", function()
    local q, name = util.queue(32)
    assert(q:push("fills it", 0)) -- 8 + 9 bytes, padded to 24
    local producer = util.child("push", name, "next", 10)
    util.eventually(function() return q:stat().push_waiters == 1 end, 10, "a blocked push")
    assert.equal("fills it", q:pop())
    assert.equal("pushing\ntrue", producer:finish())
    assert.equal("next", q:pop(0))
  end)

  -- The kill instants follow the children's own progress: each producer prints every seq it
  -- has pushed, and is killed once it has pushed a number of values that grows every round; a
  -- consumer is killed in between, while values flow. A killed producer has pushed what it
  -- printed and at most one value more; a killed consumer may take the one value it had popped
  -- but not yet printed with it. Nothing else may go missing.
  it("loses, duplicates, reorders and tears nothing when producers and consumers are killed #heavy",
    function()
      local q, name = util.queue(2048)
      local consumers, records, pushed, consumer_kills = {}, {}, {}, 0
      local function start_consumer(i)
        consumers[i] = util.child("consume", name)
      end
      local function reported(producer) -- the last seq the producer printed
        return tonumber(producer:last_line()) or 0
      end
      for i = 1, 2 do
        start_consumer(i)
        consumers[i]:await("consuming")
      end
      for round = 1, 6 do
        local p = util.child("produce", name, round, 1000000) -- more than it gets to push
        p:await("producing")
        util.eventually(function() return reported(p) >= 50 * round end, 30, "pushes")
        local victim = round % 2 + 1
        consumers[victim]:kill("KILL")
        assert.same({ "signal", 9 }, { consumers[victim]:wait() }) -- it was alive until then
        assert.equal("", consumers[victim]:stderr())
        records[#records + 1] = consumers[victim]:stdout()
        consumer_kills = consumer_kills + 1
        start_consumer(victim) -- meanwhile the other consumer keeps the values flowing
        util.eventually(function() return reported(p) >= 50 * round + 300 end, 30, "pushes")
        p:kill("KILL")
        assert.same({ "signal", 9 }, { p:wait() }) -- killed while producing
        assert.equal("", p:stderr())
        pushed[round] = reported(p)
        consumers[victim]:await("consuming")
      end
      -- The stops queue up behind every value left: the survivors drain the queue, then stop.
      for _ = 1, 2 do
        assert(q:push("stop"))
      end
      for i = 1, 2 do
        records[#records + 1] = consumers[i]:finish(30)
      end
      local seen = {}
      for _, out in ipairs(records) do
        local last = {}
        for id, seq in out:gmatch("(%d+):(%d+)") do
          local key = id .. ":" .. seq
          id, seq = tonumber(id), tonumber(seq)
          assert.is_nil(seen[key], "value " .. key .. " popped twice")
          seen[key] = true
          assert.is_true(pushed[id] ~= nil and seq <= pushed[id] + 1,
            "value " .. key .. " popped but never pushed")
          assert.is_true(seq > (last[id] or 0), "producer " .. id .. "'s values out of order")
          last[id] = seq
        end
      end
      local lost = {}
      for id = 1, 6 do
        assert.is_true(pushed[id] >= 50 * id + 300)
        for seq = 1, pushed[id] do
          if not seen[id .. ":" .. seq] then
            lost[#lost + 1] = id .. ":" .. seq
          end
        end
      end
      assert.is_true(#lost <= consumer_kills, "lost " .. table.concat(lost, " "))
      -- The queue is still usable and its count right.
      assert(q:push("after"))
      assert.equal(1, q:count())
      assert.equal("after", q:pop(0))
      assert.equal(0, q:count())
      assert.equal(0, q:used())
    end)
end)

-- Each interpreter (lua5.1 ... lua5.4, luajit) handles SIGINT by setting a hook that raises
-- "interrupted!" at the next function call; the binding calls a C function between its sleeps so
-- that the hook runs inside the blocked method.
describe("Ctrl-C (SIGINT) in the " .. util.INTERPRETER .. " interpreter", function()
  -- How the traceback names the C method: "method 'pop'" from 5.3 on, "function 'pop'" on 5.1,
  -- 5.2 and LuaJIT.
  local called = _VERSION >= "Lua 5.3" and "method" or "function"

  --- Starts a child that says `ready` and then blocks in `method`, waits until `waiters()`
  -- counts it, sends SIGINT, and requires the interpreter's "interrupted!" raised from inside
  -- `method`, and the waiter no longer counted.
  local function interrupt(method, ready, waiters, ...)
    local c = util.child(...)
    c:await(ready)
    util.eventually(function() return waiters() == 1 end, 10, "the child to block")
    c:kill("INT")
    assert.same({ "exit", 1 }, { c:wait(5) })
    assert.matches(": interrupted!\nstack traceback:\n\t[C]: in " .. called .. " '" .. method
      .. "'", c:stderr(), 1, true)
    assert.equal(0, waiters())
  end

  it("ends a blocked pop with \"interrupted!\", leaving no pop waiter counted", function()
    local q, name = util.queue()
    interrupt("pop", "popping", function() return q:stat().pop_waiters end, "pop", name, "")
  end)

  it("ends a blocked push with \"interrupted!\", leaving no push waiter counted", function()
    local q, name = util.queue(32)
    assert(q:push("fills it", 0))
    interrupt("push", "pushing", function() return q:stat().push_waiters end,
      "push", name, "more", "")
  end)

  it("ends a blocked seg:wait with \"interrupted!\", leaving no waiter counted", function()
    local seg, name = util.segment(8, "int")
    interrupt("wait", "waiting", function() return seg:stat().waiters end, "wait_forever", name)
  end)
end)
