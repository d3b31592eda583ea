--- Dictionaries through crashes: a process applying random changes (update's function
-- included) is killed at random instants; after each kill check() passes and the contents match
-- a model, the change under way counted as done or not done. 100 kills here;
-- LXSHM_CRASH_TRIALS=1000 for the long form (tests_dict.c kills a C process at every step of
-- every kind of change, and 1,000 times at random).
local lxshm = require("lxshm")
local util = require("util")
local model = require("dict_model")
local proc = util.proc

after_each(util.cleanup)

local TRIALS = tonumber(os.getenv("LXSHM_CRASH_TRIALS")) or 100

describe("a dictionary whose writer is killed at random instants", function()
  it(("holds exactly the changes made, after each of %d kills"):format(TRIALS), function()
    local name = util.name("crash")
    local d = assert(lxshm.create_dict(name, 1048576))
    local fresh = d:free_space()
    util.defer(function()
      d:close()
      lxshm.remove(name)
    end)
    for c = 0, model.COUNTERS - 1 do
      assert(d:set("c" .. c, 0))
    end
    local m, next_op = model.new(), 0
    local seed = os.time()
    math.randomseed(seed)
    for t = 1, TRIALS do
      local c = util.spawn_script("spec/helpers/dict_child.lua", "workload", name, next_op)
      util.defer(function() c:cleanup() end)
      c:await(tostring(next_op))
      proc.sleep(math.random() * 0.02)
      c:kill()
      c:wait()
      local at = next_op
      for n in c:stdout():gmatch("(%d+)\n") do
        at = math.max(at, tonumber(n))
      end
      for i = next_op, at - 1 do
        model.apply(m, i)
      end
      assert.same({ true }, { d:check() })
      local done = model.copy(m)
      model.apply(done, at)
      if model.matches(d, done, util.deep_equal) then
        m = done
      else
        local ok, why = model.matches(d, m, util.deep_equal)
        assert(ok, ("seed %d, kill %d during operation %d (%s): %s"):format(seed, t, at,
          model.op(at), tostring(why)))
      end
      next_op = at + 1
    end
    assert.is_true(next_op > TRIALS) -- every kill found the writer at work
    assert(d:flush_all())
    assert.equal(fresh, d:free_space())
  end)
end)
