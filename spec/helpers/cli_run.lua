--- Runs the real `lxshm` command (bin/lxshm) in child processes for spec/cli_spec.lua, with this
-- process's package paths and runtime (LXSHM_TEST_LUA), and standard input from a file or
-- /dev/null. Every run is checked for what a user must never see: a Lua traceback.
local util = require("util")
local proc = util.proc

local cli = {}

local Run = {}
Run.__index = Run

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then
    return ""
  end
  local s = f:read("*a")
  f:close()
  return s
end

--- Starts `lxshm ARGS...`; the last argument may be a table { stdin = "bytes", env = {...} }.
-- Returns a handle on the running command (cleaned up when the test ends).
function cli.start(...)
  local args = { ... }
  local opts = {}
  if type(args[#args]) == "table" then
    opts = table.remove(args)
  end
  local r = setmetatable({ out_path = os.tmpname(), err_path = os.tmpname(), args = args }, Run)
  local stdin = "/dev/null"
  if opts.stdin then
    r.in_path = os.tmpname()
    local f = assert(io.open(r.in_path, "wb"))
    f:write(opts.stdin)
    f:close()
    stdin = r.in_path
  end
  -- sh only opens standard input and then becomes the command (exec): the pid is lxshm's.
  local argv = { "sh", "-c", 'exec "$@" <"$0"', stdin, util.LUA, "bin/lxshm" }
  for _, a in ipairs(args) do
    argv[#argv + 1] = tostring(a)
  end
  local env = { LUA_PATH = package.path, LUA_CPATH = package.cpath, LXSHM_URL = "" }
  for k, v in pairs(opts.env or {}) do
    env[k] = v
  end
  r.pid = assert(proc.spawn(argv, { stdout = r.out_path, stderr = r.err_path, env = env }))
  util.defer(function() r:cleanup() end)
  return r
end

function Run:stdout()
  return slurp(self.out_path)
end

function Run:stderr()
  return slurp(self.err_path)
end

function Run:describe()
  return ("lxshm %s: stdout %q, stderr %q"):format(table.concat(self.args, " "), self:stdout(),
    self:stderr())
end

--- Fails if the command wrote a Lua traceback or an internal error: a user's mistake must
-- always come back as one line "lxshm: ...".
function Run:no_traceback()
  local err = self:stderr()
  assert(not err:find("traceback", 1, true) and not err:find("internal error", 1, true)
    and not err:find("%.lua:%d+:") and not err:find("bin/lxshm:%d+:"),
    "a traceback or internal error from " .. self:describe())
end

--- Waits for the command to end (at most `seconds`, stretched by LXSHM_TEST_SLOW; a command
-- still running then is killed and the wait raises). Returns its exit status, or 128 + the
-- signal that ended it.
function Run:wait(seconds)
  if not self.status then
    local how, code = proc.wait(self.pid, (seconds or 20) * util.SLOW)
    if not how then
      proc.kill(self.pid, "KILL")
      proc.wait(self.pid, 5)
      self.status = "killed"
      error("did not finish in time: " .. self:describe(), 2)
    end
    self.status = how == "exit" and code or 128 + code
    self:no_traceback()
  end
  return self.status
end

--- True once the command has printed `line` as a whole line.
function Run:said(line)
  return ("\n" .. self:stdout() .. "\n"):find("\n" .. line .. "\n", 1, true) ~= nil
end

--- Waits until the command has printed `line` (on stdout, a line of its own); raises at once if
-- it ends without saying it, or at the deadline.
function Run:await(line, seconds)
  local deadline = proc.now() + (seconds or 10) * util.SLOW
  while not self:said(line) do
    if not self.status then
      local how, code = proc.wait(self.pid, 0)
      if how then
        self.status = how == "exit" and code or 128 + code
      end
    end
    if self.status and not self:said(line) then
      error(("ended (%s) before saying %q: %s"):format(self.status, line, self:describe()), 2)
    end
    if proc.now() > deadline then
      error(("did not say %q in time: %s"):format(line, self:describe()), 2)
    end
    proc.sleep(0.001)
  end
end

function Run:kill(sig)
  if not self.status then
    return proc.kill(self.pid, sig or "KILL")
  end
end

function Run:cleanup()
  if not self.status then
    proc.kill(self.pid, "KILL")
    proc.wait(self.pid, 5)
    self.status = "killed"
  end
  os.remove(self.out_path)
  os.remove(self.err_path)
  if self.in_path then
    os.remove(self.in_path)
  end
end

--- Runs `lxshm ARGS...` to its end: returns its exit status, stdout and stderr.
function cli.run(...)
  local r = cli.start(...)
  local status = r:wait()
  return status, r:stdout(), r:stderr()
end

--- Runs `lxshm ARGS...` and requires exit status 0; returns stdout.
function cli.ok(...)
  local r = cli.start(...)
  local status = r:wait()
  if status ~= 0 then
    error(("exit status %s: %s"):format(status, r:describe()), 2)
  end
  return r:stdout()
end

--- Runs `lxshm ARGS...` and requires a failure: exit status 1, nothing on stdout, and one line
-- on stderr ending in " (CODE)". Returns that line without the newline.
function cli.fails(code, ...)
  local r = cli.start(...)
  local status = r:wait()
  local err = r:stderr()
  if status ~= 1 or r:stdout() ~= "" or not err:find(" %(" .. code .. "%)\n$")
    or not err:find("^lxshm: ") then
    error(("expected a failure (%s): exit status %s, %s"):format(code, status, r:describe()), 2)
  end
  return (err:gsub("\n$", ""))
end

--- Runs `lxshm ARGS...` and requires a usage error: exit status 2, nothing on stdout, stderr
-- "lxshm: ..." and a usage line. Returns stderr.
function cli.misused(...)
  local r = cli.start(...)
  local status = r:wait()
  local err = r:stderr()
  if status ~= 2 or r:stdout() ~= "" or not err:find("^lxshm: ") or not err:find("\nusage: ") then
    error(("expected a usage error: exit status %s, %s"):format(status, r:describe()), 2)
  end
  return err
end

return cli
