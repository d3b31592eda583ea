--- Child processes for the specs: `lua5.4 spec/helpers/child.lua COMMAND ARGS...`.
-- Each command does one thing another process of a real pipeline would do, prints what the
-- parent needs on stdout, and exits 0; any unexpected result raises (exit 1, message on stderr).
local lxshm = require("lxshm")
local util = require("util")
local proc = util.proc

local commands = {}

local function open(name)
  return assert(lxshm.open(name))
end

--- write NAME VALUE: store VALUE, print the new version.
function commands.write(name, value)
  local seg = open(name)
  assert(seg:write(value))
  io.write(seg:version())
end

--- read NAME: print the current value.
function commands.read(name)
  io.write(open(name):read())
end

--- create NAME SIZE: create, print "created"; on failure print the code.
function commands.create(name, size)
  local seg, _, code = lxshm.create(name, tonumber(size))
  io.write(seg and "created" or tostring(code))
end

--- attach_race NAME SIZE START: spin until the monotonic clock reaches START, attach, write
-- this process's pid, print "attached".
function commands.attach_race(name, size, start)
  start = tonumber(start)
  while proc.now() < start do -- luacheck: ignore 542
  end
  local seg = assert(lxshm.attach(name, tonumber(size)))
  assert(seg:write(tostring(proc.pid())))
  io.write("attached")
end

--- open_race NAME SIZE: open NAME in a loop, announcing "spinning" first, until 50 opens have
-- succeeded; every result must be NOT_FOUND or a whole segment of SIZE bytes. Prints the
-- number of opens that found nothing.
function commands.open_race(name, size)
  size = tonumber(size)
  io.stdout:setvbuf("no")
  io.write("spinning ")
  local opened, missed = 0, 0
  while opened < 50 do
    local seg, err, code = lxshm.open(name)
    if seg then
      assert(seg:size() == size, "size " .. seg:size())
      assert(seg:version() == 0 and seg:read() == "", "not a new segment")
      seg:close()
      opened = opened + 1
    elseif code == lxshm.NOT_FOUND then
      missed = missed + 1
    else
      error("open during create returned " .. tostring(err))
    end
  end
  io.write(missed)
end

--- write_loop NAME SIZE: write stamped values of SIZE bytes as fast as possible, forever.
function commands.write_loop(name, size)
  local seg = open(name)
  size = tonumber(size)
  local i = 0
  while true do
    i = i + 1
    assert(seg:write(util.stamp(i, size)))
  end
end

--- write_after NAME SECONDS VALUE: sleep, then write.
function commands.write_after(name, seconds, value)
  local seg = open(name)
  proc.sleep(tonumber(seconds))
  assert(seg:write(value))
end

--- wait NAME VERSION TIMEOUT: print what wait returned ("<version>" or "nil <code>").
function commands.wait(name, version, timeout)
  local seg = open(name)
  local v, _, code = seg:wait(tonumber(version), tonumber(timeout))
  io.write(v and tostring(v) or ("nil " .. tostring(code)))
end

local cmd = arg[1]
if not commands[cmd] then
  io.stderr:write("child.lua: unknown command ", tostring(cmd), "\n")
  os.exit(2)
end
commands[cmd](table.unpack(arg, 2))
