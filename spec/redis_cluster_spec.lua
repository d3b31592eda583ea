--- Redis Cluster: every key of an object lives in one slot (one node), and objects keep working
-- while their slot moves to another node, in the steps Redis documents (CLUSTER SETSLOT
-- MIGRATING / IMPORTING, MIGRATE, SETSLOT NODE): the client follows ASK (sending ASKING first)
-- while the keys are on the target and MOVED (reading CLUSTER SLOTS again) once the slot is.
local lxshm = require("lxshm")
local util = require("util")
local servers = require("redis_server")

after_each(util.cleanup)

if not servers.backend() then
  describe("Redis Cluster", function()
    it("needs the Redis backend: connect says how to get it", function()
      local _, msg, code = lxshm.connect("redis://127.0.0.1:7000")
      assert.equal(lxshm.UNSUPPORTED, code)
      assert.matches("libhiredis%-dev", msg)
    end)
  end)
  return
end

describe("a three-node Redis Cluster", function()
  local cluster, ns

  lazy_setup(function()
    cluster = servers.cluster()
    ns = assert(lxshm.connect(cluster.url))
  end)

  lazy_teardown(function()
    ns:close()
    cluster:stop()
  end)

  local function named(tag)
    local name = util.name(tag)
    util.defer(function() ns:remove(name) end)
    return name
  end

  -- The node that is not `a` or `b`.
  local function another(node)
    for _, n in ipairs(cluster.nodes) do
      if n ~= node then
        return n
      end
    end
  end

  it("is found by asking the server; keys of one object stay on one node", function()
    assert.is_true(ns:cluster())
    assert.matches("%(cluster%)$", tostring(ns))
    local names = {}
    for i = 1, 12 do
      local name = named("spread" .. i)
      names[i] = name
      local d = assert(ns:create_dict(name, 65536))
      for k = 1, 5 do
        assert(d:set("k" .. k, k, 60))
      end
      assert(d:wait("k1", 0, 0)) -- makes the key's wait stream
      d:close()
    end
    local owners = {}
    for _, name in ipairs(names) do
      local holders = 0
      for _, node in ipairs(cluster.nodes) do
        local keys = cluster:cli(node, "KEYS", "{lxshm:" .. name .. "}*")
        if keys ~= "" then
          holders = holders + 1
          owners[node] = true
          local n = select(2, keys:gsub("\n", "")) + 1
          assert.is_true(n >= 8, name .. " has " .. n .. " keys") -- hash, index, sizes, 5 keys
        end
      end
      assert.equal(1, holders, name)
    end
    local used = 0
    for _ in pairs(owners) do
      used = used + 1
    end
    assert.is_true(used >= 2, "12 objects all on one node")
  end)

  it("keep every kind working while their slots move to another node", function()
    local seg = assert(ns:create(named("mseg"), 256))
    local q = assert(ns:create_queue(named("mq"), 1024))
    local d = assert(ns:create_dict(named("md"), 65536))
    local t = assert(ns:create_topic(named("mt"), 65536))
    local sub = assert(t:subscribe("oldest"))
    local count, published = 0, 0
    local expect_pop, pushed, incrs = 1, 0, 0

    -- What works while the slot migrates: commands and scripts whose keys all exist, on the old
    -- node before the keys move, on the new one (ASK) after. A script naming a key that does
    -- not exist gets TRYAGAIN on both until the slot has moved (see the next test).
    local function single_keys(step)
      count = count + 1
      assert.is_true(seg:put({ n = count }), step)
      assert.same({ n = count }, seg:get(), step)
      assert.equal(count, seg:version(), step)
      assert.equal(count + 1, seg:update(function(v) return { n = v.n + 1 } end).n, step)
      count = count + 1
      assert.equal(incrs > 0 and incrs or nil, d:get("n"), step)
      published = published + 1
      assert.equal(published, t:publish(published), step)
    end

    -- Every kind's operations, checking what came before.
    local function round(step)
      single_keys(step)
      local okp, errp = q:push_many({ pushed + 1, pushed + 2 })
      assert(okp, step .. ": " .. tostring(errp))
      pushed = pushed + 2
      assert.equal(expect_pop, q:pop(0), step)
      expect_pop = expect_pop + 1
      assert(d:set("k", count), step)
      assert.equal(count, d:get("k"), step)
      incrs = incrs + 1
      assert.equal(incrs, d:incr("n", 1, 0), step)
      local values, n = sub:next_many(100, 0)
      assert(values, step)
      assert.equal(published, values[n], step)
    end

    round("before")
    for _, h in ipairs({ seg, q, d, t }) do
      local from, slot = cluster:owner("{lxshm:" .. h:name() .. "}")
      local to = another(from)
      cluster:migrate(slot, from, to, function(step)
        if step == "done" then
          round(step) -- MOVED: the map is read again
        else
          single_keys(step) -- migrating: the old node; moved-keys: ASK, then the new node
        end
      end)
      assert.equal(to, (cluster:owner("{lxshm:" .. h:name() .. "}")))
      round("after " .. h:name())
    end
    local asked = 0
    for _, node in ipairs(cluster.nodes) do
      local stats = cluster:cli(node, "INFO", "commandstats")
      asked = asked + tonumber(stats:match("cmdstat_asking:calls=(%d+)") or 0)
    end
    assert.is_true(asked > 0, "no ASKING was sent: ASK was never followed")
    assert.equal(pushed - expect_pop + 1, q:count())
    assert.is_true(d:check())
    for _, h in ipairs({ sub, seg, q, d, t }) do
      h:close()
    end
  end)

  it("retry a script Redis answers TRYAGAIN (keys half moved) until the slot has moved",
    function()
      local name = named("mtry")
      local q = assert(ns:create_queue(name, 1024))
      assert(q:push("first"))
      local from, slot = cluster:owner("{lxshm:" .. name .. "}")
      local function tryagains()
        local stats = cluster:cli(from, "INFO", "errorstats")
        return tonumber(stats:match("errorstat_TRYAGAIN:count=(%d+)") or 0)
      end
      local before = tryagains()
      local c
      cluster:migrate(slot, from, another(from), function(step)
        if step == "migrating" then -- the queue's waiter keys do not exist: TRYAGAIN
          c = util.spawn_script("spec/helpers/ns_child.lua", "q_push", cluster.url, name,
            "second", 30)
          util.defer(function() c:cleanup() end)
          c:await("pushing")
          util.eventually(function() return tryagains() > before end, 10, "a TRYAGAIN")
          assert.is_false(c:said("pushed"))
        end
      end)
      assert.equal("pushed", c:finish(30):match("pushed"))
      assert.is_true(tryagains() > before)
      assert.equal("first", q:pop(0))
      assert.equal("second", q:pop(0))
      q:close()
    end)

  it("wakes a wait blocked while its slot moved", function()
    local name = named("mwait")
    local seg = assert(ns:create(name, 64))
    local c = util.spawn_script("spec/helpers/ns_child.lua", "seg_wait", cluster.url, name, 0, 60)
    util.defer(function() c:cleanup() end)
    c:await("waiting")
    local from, slot = cluster:owner("{lxshm:" .. name .. "}")
    cluster:migrate(slot, from, another(from))
    assert(seg:put("moved"))
    assert.equal("version 1", c:finish(30):match("version %d+"))
    seg:close()
  end)
end)
