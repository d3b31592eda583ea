--- The "recorder": appends every event to a file, one line each, for replays. Its subscription
-- is named ("recorder"), so its position lives in the topic: if the recorder stops, even
-- killed, the next one resumes at the first event not yet recorded.
--   lua5.4 examples/events/recorder.lua [TOPIC] [FILE] [STOP_AFTER]
-- STOP_AFTER n: leave after n events, as a crash would (no goodbye), to show the resume.
local lxshm = require("lxshm")

local name, file, stop_after = arg[1] or "game.events", arg[2] or "events.log", tonumber(arg[3])
local events = assert(lxshm.attach_topic(name, 256 * 1024))
local sub = assert(events:subscribe({ name = "recorder", from = "oldest" }))
local out = assert(io.open(file, "a"))
print(("recorder: ready, resuming at event %d"):format(sub:position()))
io.stdout:flush()
local written = 0
while true do
  local e, seq, lost = sub:next(10)
  assert(seq, lost)
  if lost > 0 then
    out:write(("%d lost %d\n"):format(seq, lost))
  end
  local fields = {}
  for k, v in pairs(e) do
    if k ~= "type" and k ~= "tick" then
      fields[#fields + 1] = k .. "=" .. tostring(v)
    end
  end
  table.sort(fields)
  out:write(("%d %d %s %s\n"):format(seq, e.tick, e.type, table.concat(fields, " ")))
  out:flush()
  written = written + 1
  if e.type == "game_over" then
    print(("recorder: recorded up to event %d (%d this run)"):format(seq, written))
    break
  end
  if stop_after and written == stop_after then
    os.exit(0, false) -- no close: the position was kept with every event returned
  end
end
