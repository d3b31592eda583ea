--- Segments across real processes: exchange, races, and processes killed at any moment.
local lxshm = require("lxshm")
local util = require("util")
local proc = util.proc

after_each(util.cleanup)

describe("two processes", function()
  it("exchange values both ways", function()
    local seg, name = util.segment(64)
    assert.equal("1", util.run("write", name, "from the child"))
    assert.equal("from the child", seg:read())
    assert(seg:write("from the parent \0 with a zero"))
    assert.equal("from the parent \0 with a zero", util.run("read", name))
  end)

  it("see EXISTS when one creates a name the other holds", function()
    local _, name = util.segment(8)
    assert.equal(tostring(lxshm.EXISTS), util.run("create", name, 8))
  end)

  it("keep working through open handles after another process removes the name", function()
    local seg, name = util.segment(32)
    local c = util.child("write_after_remove", name, "after remove")
    c:await("opened") -- the child holds its handle ...
    assert.is_true(lxshm.remove(name))
    assert.equal("opened\n", c:finish()) -- ... and writes through it once the name is gone
    assert.equal("after remove", seg:read())
    local _, _, code = lxshm.open(name)
    assert.equal(lxshm.NOT_FOUND, code)
  end)

  it("wake a waiter when the other commits", function()
    local seg, name = util.segment(16)
    local waiter = util.child("wait", name, 0, 10)
    util.eventually(function() return seg:stat().waiters == 1 end, 10, "the child to wait")
    assert(seg:write("wake up"))
    assert.equal("waiting\n1", waiter:finish())
  end)

  it("count waiters in stat, and forget one that was killed while waiting", function()
    local seg, name = util.segment(16)
    local a, b = util.child("wait", name, 0, 30), util.child("wait", name, 0, 30)
    util.eventually(function() return seg:stat().waiters == 2 end, 10, "two waiters")
    a:kill("KILL")
    a:wait()
    util.eventually(function() return seg:stat().waiters == 1 end, 10, "the dead one forgotten")
    assert(seg:write("go"))
    assert.equal("waiting\n1", b:finish())
    assert.equal(0, seg:stat().waiters)
  end)

  it("exchange nested tables", function()
    local seg, name = util.segment(1024)
    util.run("put_table", name)
    local t = seg:get()
    assert.same({
      tick = 42, time = 1.5, paused = false, name = "arena",
      players = { { name = "alice", pos = { 1.25, -3.5 } }, { name = "bob", pos = { 0.0, 2 } } },
      [7] = "seven", [1.5] = "one and a half",
    }, t)
    if util.HAS_INT then -- the child's 0.0 came as a float, its 2 as an integer
      assert.equal("float", math.type(t.players[2].pos[1]))
      assert.equal("integer", math.type(t.players[2].pos[2]))
    else -- doubles only: 0.0 is the number 0, which the child wrote as an integer, as 2
      assert.is_true(util.is_integer(t.players[2].pos[1]))
      assert.is_true(util.is_integer(t.players[2].pos[2]))
    end
  end)

  it("let a waiter time out when nobody commits", function()
    local _, name = util.segment(16)
    assert.equal("waiting\nnil " .. lxshm.TIMEOUT, util.run("wait", name, 0, 0.05))
  end)
end)

describe("racing processes", function()
  it("attach: of 8 processes attaching a new name at once, all share one segment", function()
    for _ = 1, 5 do
      local name, gate = util.name("race"), util.gate()
      util.defer(function() lxshm.remove(name) end)
      local kids = {}
      for i = 1, 8 do
        kids[i] = util.child("attach_race", name, 128, gate)
      end
      for i = 1, 8 do
        kids[i]:await("ready")
      end
      util.open_gate(gate)
      for i = 1, 8 do
        assert.equal("ready\nattached", kids[i]:finish())
      end
      local seg = assert(lxshm.open(name))
      assert.equal(128, seg:size())
      assert.equal(8, seg:version()) -- every child wrote into the same segment
      seg:close()
    end
  end)

  it("open never sees a half-made segment while another process creates it", function()
    for round = 1, 10 do
      local name = util.name("oc")
      util.defer(function() lxshm.remove(name) end)
      local opener = util.child("open_race", name, 4096 * round)
      opener:await("spinning") -- its opens have begun to find nothing
      proc.sleep(0.001 * round) -- only varies the instant of the create within the spinning
      local seg = assert(lxshm.create(name, 4096 * round))
      local missed = tonumber(opener:finish():match("^spinning\n(%d+)$"))
      assert.is_true(missed > 0)
      seg:close()
    end
  end)
end)

describe("update across processes", function()
  it("loses no increment: 4 processes x 500 updates give 2000", function()
    local seg, name = util.segment(64)
    local kids = {}
    for i = 1, 4 do
      kids[i] = util.child("increment", name, 500)
    end
    for i = 1, 4 do
      kids[i]:finish(60)
    end
    assert.equal(2000, seg:get())
    assert.equal(2000, seg:version())
  end)

  it("times out with TIMEOUT while another process holds the lock, changing nothing", function()
    local seg, name = util.segment(64)
    assert(seg:put("before"))
    local holder = util.child("update_hang", name)
    holder:await("locked")
    for _, call in ipairs({
      function() return seg:update(function() return "mine" end, 0.05) end,
      function() return seg:update(function() return "mine" end, 0) end,
      function() return seg:write("mine", 0.05) end,
      function() return seg:put("mine", 0) end,
    }) do
      local r, err, code = call()
      assert.is_nil(r)
      assert.equal(lxshm.TIMEOUT, code)
      assert.equal(name .. ": lock not obtained in time", err)
    end
    assert.equal("before", seg:get()) -- readers never wait for the lock
    holder:kill("KILL")
    holder:wait()
  end)
end)

describe("a process killed", function()
  it("or exiting inside update leaves the lock to the next process and the value intact",
    function()
      local seg, name = util.segment(64)
      for round = 1, 6 do
        assert(seg:put({ round = round }))
        local c
        if round % 2 == 1 then
          c = util.child("update_exit", name)
          assert.same({ "exit", 3 }, { c:wait() })
        else
          c = util.child("update_hang", name)
          c:await("locked")
          c:kill("KILL")
          assert.equal("signal", (c:wait()))
        end
        assert.same({ round = round }, seg:get())
        local v = assert(seg:update(function(t)
          t.after = true
          return t
        end, 5))
        assert.same({ round = round, after = true }, v)
      end
    end)

  it("in the middle of writes leaves a whole value and a free lock", function()
    local size = 256 * 1024
    local seg, name = util.segment(size)
    for round = 1, 20 do
      local writer = util.child("write_loop", name, size)
      local v0 = seg:version()
      -- The kill instant follows the writer's own progress: a few commits more every round.
      util.eventually(function() return seg:version() > v0 + 2 + round % 5 end, 10,
        "the writer to commit")
      writer:kill("KILL")
      local how = writer:wait()
      assert.equal("signal", how)
      local value = seg:read()
      assert.is_true(util.whole(value), "a torn value after round " .. round)
      -- The next process gets the lock at once and commits.
      assert.is_true(seg:write(util.stamp(round, size), 5))
      assert.equal(util.stamp(round, size), seg:read())
    end
  end)

  --- Two processes store stamped strings of `size` bytes with `method` ("write" or "put")
  -- while this one reads them back for a second with `read` ("read" or "get"): every value read
  -- must be whole.
  local function readers_never_see_mixed(method, read, size)
    local seg, name = util.segment(size + 5)
    assert(seg[method](seg, util.stamp(0, size)))
    local writers = { util.child("write_loop", name, size, method),
      util.child("write_loop", name, size, method) }
    util.eventually(function() return seg:version() > 10 end, 10, "the writers to start")
    local v0, deadline, reads = seg:version(), proc.now() + 1.0, 0
    while proc.now() < deadline do
      local v = assert(seg[read](seg))
      assert.equal(size, #v)
      assert.is_true(util.whole(v), "a mixed value")
      reads = reads + 1
    end
    for _, w in ipairs(writers) do
      w:kill("KILL")
      w:wait()
    end
    assert.is_true(reads > 0 and seg:version() > v0) -- the writers wrote while we read
  end

  it("while readers read concurrently never hands them a mixed value", function()
    readers_never_see_mixed("write", "read", 64 * 1024)
  end)

  -- A put string of 64 KiB or more is stored as its header and bytes, and get copies it out of
  -- the mapping straight into a Lua string: the version check must still catch every overtaking.
  it("while readers get big strings concurrently never hands them a mixed one", function()
    readers_never_see_mixed("put", "get", 200 * 1024)
  end)
end)
