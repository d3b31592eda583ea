--- The examples users read first must keep working: each runs to the end by itself.
local util = require("util")

after_each(util.cleanup)

local function run(script)
  local c = util.spawn_script(script)
  util.defer(function() c:cleanup() end)
  return c:finish(60)
end

describe("the examples", function()
  it("demo: two processes exchange tables", function()
    local out = run("examples/demo.lua")
    assert.matches('game %-> editor  {dead=true, hp=%-2, id=1, ok=true}', out)
    assert.matches("table round trips", out)
    assert.matches("both segments removed", out)
  end)

  it("job_queue: two workers do every job once", function()
    local out = run("examples/job_queue/run.lua")
    assert.matches("60 results, each job done once", out)
  end)

  it("shared_cache: three workers checksum each file once; the monitor sees them all", function()
    local out = run("examples/shared_cache/run.lua")
    assert.matches("run: 40 files, each computed once; %d+ cache hits", out)
    assert.matches("monitor: 40/40 files done", out)
  end)

  it("events: an overlay and a recorder, which stops and resumes, follow the game", function()
    local out = run("examples/events/run.lua")
    assert.matches("%[ 203%] carol eliminated alice", out)
    assert.matches("overlay: game over at tick 300; 42 events shown, 0 missed", out)
    assert.matches("recorder: ready, resuming at event 21", out)
    assert.matches("run: the log holds events 1 to 42, each once", out)
  end)

  it("game_state: the overlay follows the game to the end", function()
    local out = run("examples/game_state/run.lua")
    assert.matches("players.2.hp: 100 %-> 85", out)
    assert.matches("the game is over; %d+ states seen, the last at tick 120", out)
  end)
end)
