--- Topics through crashes: publishers and subscribers killed with SIGKILL at random instants,
-- in loops. 30 rounds per test normally; LXSHM_TEST_LONG=1 runs 300.
local lxshm = require("lxshm")
local util = require("util")
local proc = util.proc

after_each(util.cleanup)

local ROUNDS = os.getenv("LXSHM_TEST_LONG") and 300 or 30

local function topic(size, tag)
  local name = util.name(tag or "tc")
  local t = assert(lxshm.create_topic(name, size))
  util.defer(function()
    t:close()
    lxshm.remove(name)
  end)
  return t, name
end

local function child(...)
  local c = util.spawn_script("spec/helpers/topic_child.lua", ...)
  util.defer(function() c:cleanup() end)
  return c
end

--- A random instant in a child's run: once the topic has grown by 1 to `most` messages.
local function some_messages_later(t, most)
  local target = t:last() + math.random(1, most)
  util.eventually(function() return t:last() >= target end, 30, "messages")
end

describe("a topic through crashes", function()
  it("tears no message and stays usable when publishers are killed at random instants", function()
    math.randomseed(os.time())
    local t, name = topic(4 * 1024 * 1024)
    local tc = require("topic_child")
    local mine = t:subscribe("oldest")
    local watchers = { child("watch", name), child("watch", name, "watcher") }
    for _, w in ipairs(watchers) do
      w:await("watching")
    end
    for round = 1, ROUNDS do
      local batch = round % 3 == 0 and 16 or 1 -- every third publishes 16 at a time
      local p = child("publish", name, round, 0, 16 + round % 50, batch)
      p:await("publishing")
      some_messages_later(t, 2000)
      p:kill()
      assert.same({ "signal", 9 }, { p:wait() }) -- killed while publishing
      -- The next publisher goes on at once, whatever the killed one was doing.
      local seq = t:publish("parent " .. round, 5)
      assert.equal(t:last(), seq)
      -- Everything up to here is whole, and a batch is all there or not at all.
      local last_n, lost_any = 0, false
      while true do
        local v, s, lost = mine:next(0)
        assert(s, lost)
        lost_any = lost_any or lost > 0
        if s == seq then
          assert.equal("parent " .. round, v)
          break
        end
        local id, n = tc.check(v, s)
        assert.equal(round, id)
        assert.is_true(lost_any or n == last_n + 1, "publisher " .. round .. ": " .. n
          .. " after " .. last_n)
        last_n = n
      end
      assert.is_true(lost_any or last_n % batch == 0, "a batch cut at " .. last_n)
    end
    util.eventually(function() return t:stat().waiters == 2 end, 30, "the watchers to catch up")
    local stop = t:publish("stop")
    for _, w in ipairs(watchers) do
      local got, lost, last = w:finish(60):match("got (%d+) lost (%d+) last (%d+)")
      assert.equal(stop, tonumber(last))
      assert.equal(stop - 1, tonumber(got) + tonumber(lost))
    end
  end)

  it("keeps publishing without waiting when subscribers are killed at random instants, and "
    .. "frees their names", function()
    local t, name = topic(64 * 1024)
    local tc = require("topic_child")
    local n = 0
    local function publish_some()
      local list = {}
      for _ = 1, math.random(1, 50) do
        n = n + 1
        list[#list + 1] = tc.message(0, n, 20 + n % 40)
      end
      assert(t:publish_many(list, 0))
    end
    for round = 1, ROUNDS do
      local subname = round % 2 == 0 and "r" .. round % 4 or ""
      local r = child("read_forever", name, subname)
      r:await("reading")
      for _ = 1, math.random(1, 20) do
        publish_some()
      end
      if round % 5 == 0 then -- killed while asleep in next, registered as a waiter
        util.eventually(function() return t:stat().waiters >= 1 end, 10, "a blocked next")
      else
        proc.sleep(math.random() * 0.005)
      end
      r:kill()
      assert.same({ "signal", 9 }, { r:wait() })
      assert.equal("", r:stderr())
    end
    assert.equal(0, t:stat().waiters) -- the killed waiters are not counted any more
    for k = 0, 3, 2 do
      assert(t:subscribe({ name = "r" .. k })):close() -- free again
    end
    assert.equal(2, t:stat().subscribers)
  end)

  it("resumes a named subscription killed at a random instant after the last message it "
    .. "returned", function()
    local t, name = topic(1024 * 1024)
    local tc = require("topic_child")
    local n, resumed = 0, 1
    for _ = 1, ROUNDS do
      local r = child("read_forever", name, "dur", "print")
      r:await("reading")
      for _ = 1, math.random(1, 200) do
        n = n + 1
        assert(t:publish(tc.message(0, n, 24)))
      end
      proc.sleep(math.random() * 0.003)
      r:kill()
      r:wait()
      -- The last message it returned: the last it printed, or one more if killed in between.
      local printed = tonumber(r:stdout():match("(%d+)\n$")) or resumed - 1
      local sub = assert(t:subscribe({ name = "dur" }))
      resumed = sub:position()
      assert.is_true(resumed == printed + 1 or resumed == printed + 2,
        ("printed %d, resumes at %d"):format(printed, resumed))
      sub:close()
    end
  end)
end)
