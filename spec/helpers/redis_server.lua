--- Throw-away Redis servers for the specs: a single server on a Unix socket, or a three-node
-- Redis Cluster on loopback ports, each with no persistence (--save '' --appendonly no) and
-- --hz 100 (so that a blocking command's timeout fires within ~10 ms), in a directory of its
-- own, stopped (and the directory removed) by stop(). Each server runs under a small shell
-- watchdog that kills it if this process dies, so a crashed test run leaves nothing behind.
-- Readiness is waited for by asking the server (PING), never by sleeping a fixed time.
local util = require("util")
local proc = util.proc

local M = {}

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- True when redis-server and redis-cli are installed.
function M.installed()
  local ok = os.execute("command -v redis-server >/dev/null 2>&1 && command -v redis-cli "
    .. ">/dev/null 2>&1")
  return ok == true or ok == 0 -- 0: Lua 5.1 and LuaJIT give the status
end

--- True when the Redis backend (lxshm.redis) is built and loads.
function M.backend()
  return (pcall(require, "lxshm.redis"))
end

--- Runs redis-cli with `args` (a list) against addr ({ sock = path } or { port = n }); returns
-- its output (without the final newline) and whether it exited 0. LD_PRELOAD is cleared: under
-- `make asan` it holds libasan, which has no business in redis-cli.
function M.cli(addr, args)
  local cmd = { "LD_PRELOAD= redis-cli" }
  if addr.sock then
    cmd[#cmd + 1] = "-s " .. q(addr.sock)
  else
    cmd[#cmd + 1] = "-h 127.0.0.1 -p " .. addr.port
  end
  for _, a in ipairs(args) do
    cmd[#cmd + 1] = q(a)
  end
  local f = assert(io.popen(table.concat(cmd, " ") .. " 2>&1", "r"))
  local out = f:read("*a")
  local ok = f:close()
  return (out:gsub("\n$", "")), ok
end

local function tmpdir(tag)
  local f = assert(io.popen("mktemp -d /tmp/lxshm-redis-" .. tag .. ".XXXXXX"))
  local dir = f:read("*l")
  f:close()
  return dir
end

-- Starts redis-server with `args` under the watchdog; returns the watchdog's pid.
local function launch(dir, args)
  local script = 'redis-server "$@" & s=$!; trap "kill -9 $s 2>/dev/null; exit 0" TERM INT; '
    .. 'while kill -0 "$PPID_WATCH" 2>/dev/null && kill -0 "$s" 2>/dev/null; do sleep 0.5; done; '
    .. 'kill -9 "$s" 2>/dev/null; wait "$s" 2>/dev/null; exit 0'
  local argv = { "sh", "-c", script, "redis-watchdog" }
  for _, a in ipairs(args) do
    argv[#argv + 1] = a
  end
  return assert(proc.spawn(argv, {
    stdout = dir .. "/log",
    stderr = dir .. "/log",
    env = { LD_PRELOAD = "", PPID_WATCH = tostring(proc.pid()) },
  }))
end

-- Waits until the server at addr answers PING (or the watchdog ends: it failed to start).
local function await_ping(addr, watchdog, dir)
  local deadline = proc.now() + 10 * util.SLOW
  while true do
    local out = M.cli(addr, { "PING" })
    if out == "PONG" or out:find("NOAUTH", 1, true) then -- up (behind a password)
      return true
    end
    if watchdog and proc.wait(watchdog, 0) then
      return nil, util.slurp(dir .. "/log")
    end
    if proc.now() > deadline then
      error("redis-server did not answer PING in time: " .. util.slurp(dir .. "/log"), 2)
    end
    proc.sleep(0.005)
  end
end

local Server = {}
Server.__index = Server

local function base_args(dir)
  return { "--save", "", "--appendonly", "no", "--dir", dir, "--hz", "100",
    "--daemonize", "no", "--protected-mode", "no" }
end

--- A single server on a Unix socket: { url, sock, dir, ... }. extra: more arguments. With
-- opts.tcp it listens on a loopback port too (server.port), picked at random in 40000-49999 and
-- picked again if taken.
function M.single(extra, opts)
  local dir = tmpdir("single")
  local self = setmetatable({ dir = dir, sock = dir .. "/r.sock", extra = extra or {} }, Server)
  self.url = "redis+unix://" .. self.sock
  for attempt = 1, 10 do
    if opts and opts.tcp then
      self.port = 40000 + (proc.pid() * 31 + attempt * 977 + math.floor(proc.now() * 1000)) % 10000
    end
    local ok, log = self:start()
    if ok then
      return self
    end
    if not (opts and opts.tcp) or attempt == 10 then
      error("redis-server did not start: " .. tostring(log))
    end
  end
end

--- (Re)starts the server on the same socket (and port). Returns true, or nil and its log when
-- it could not start.
function Server:start()
  local args = base_args(self.dir)
  for _, a in ipairs({ "--port", tostring(self.port or 0), "--unixsocket", self.sock,
    "--unixsocketperm", "700" }) do
    args[#args + 1] = a
  end
  if self.port then
    args[#args + 1] = "--bind"
    args[#args + 1] = "127.0.0.1"
  end
  for _, a in ipairs(self.extra) do
    args[#args + 1] = a
  end
  self.watchdog = launch(self.dir, args)
  local ok, log = await_ping({ sock = self.sock }, self.watchdog, self.dir)
  if not ok then
    self.watchdog = nil
  end
  return ok, log
end

--- The server's own pid (INFO server's process_id).
function Server:pid()
  local out = M.cli({ sock = self.sock }, { "INFO", "server" })
  return tonumber(out:match("process_id:(%d+)"))
end

--- Kills the server with SIGKILL (the watchdog then ends too) and waits until it is gone.
function Server:kill()
  local pid = self:pid()
  if pid then
    proc.kill(pid, "KILL")
  end
  if self.watchdog then
    proc.wait(self.watchdog, 10)
    self.watchdog = nil
  end
  os.remove(self.sock)
end

--- Runs a redis-cli command against the server.
function Server:cli(...)
  return M.cli({ sock = self.sock }, { ... })
end

function Server:stop()
  if self.watchdog then
    M.cli({ sock = self.sock }, { "SHUTDOWN", "NOSAVE" })
    if not proc.wait(self.watchdog, 5) then
      proc.kill(self.watchdog, "TERM")
      proc.wait(self.watchdog, 5)
    end
    self.watchdog = nil
  end
  os.execute("rm -rf " .. q(self.dir))
end

-- ---- a three-node cluster -------------------------------------------------------------------

local Cluster = {}
Cluster.__index = Cluster

local function node_args(dir, port)
  local args = base_args(dir)
  for _, a in ipairs({ "--port", tostring(port), "--bind", "127.0.0.1", "--cluster-enabled",
    "yes", "--cluster-config-file", dir .. "/nodes.conf", "--cluster-node-timeout", "2000" }) do
    args[#args + 1] = a
  end
  return args
end

--- A three-node Redis Cluster (no replicas) on loopback ports: { url, nodes = {{port, dir,
-- id}...} }. Ports are picked at random in 20000-29999 (the cluster bus uses port + 10000); a
-- node that cannot bind makes the whole set start again elsewhere.
function M.cluster()
  for _ = 1, 5 do
    local seed = (proc.pid() * 7919 + math.floor(proc.now() * 1000)) % 9990
    local base = 20000 + seed
    local self = setmetatable({ nodes = {} }, Cluster)
    local ok = true
    for i = 1, 3 do
      local dir = tmpdir("node" .. i)
      local node = { port = base + i - 1, dir = dir }
      node.watchdog = launch(dir, node_args(dir, node.port))
      self.nodes[i] = node
    end
    for _, node in ipairs(self.nodes) do
      if not await_ping({ port = node.port }, node.watchdog, node.dir) then
        ok = false
      end
    end
    if ok then
      local args = { "--cluster", "create" }
      for _, node in ipairs(self.nodes) do
        args[#args + 1] = "127.0.0.1:" .. node.port
      end
      for _, a in ipairs({ "--cluster-replicas", "0", "--cluster-yes" }) do
        args[#args + 1] = a
      end
      local out, created = M.cli({ port = self.nodes[1].port }, args)
      assert(created, "redis-cli --cluster create failed: " .. out)
      self:await_ok()
      for _, node in ipairs(self.nodes) do
        node.id = M.cli({ port = node.port }, { "CLUSTER", "MYID" })
      end
      self.url = "redis://127.0.0.1:" .. self.nodes[1].port
      return self
    end
    self:stop()
  end
  error("could not start a Redis Cluster")
end

--- Waits until every node says cluster_state:ok and agrees on who serves every slot.
function Cluster:await_ok()
  util.eventually(function()
    for _, node in ipairs(self.nodes) do
      local info = M.cli({ port = node.port }, { "CLUSTER", "INFO" })
      if not info:find("cluster_state:ok", 1, true) then
        return false
      end
    end
    return true
  end, 30, "cluster_state:ok on every node")
end

--- The node serving `key`'s slot, and the slot.
function Cluster:owner(key)
  local slot = tonumber((M.cli({ port = self.nodes[1].port }, { "CLUSTER", "KEYSLOT", key })))
  local out = M.cli({ port = self.nodes[1].port }, { "CLUSTER", "NODES" })
  for line in out:gmatch("[^\n]+") do
    local fields = {}
    for f in line:gmatch("%S+") do
      fields[#fields + 1] = f
    end
    for i = 9, #fields do
      local a, b = fields[i]:match("^(%d+)%-(%d+)$")
      a = tonumber(a or fields[i]:match("^(%d+)$"))
      b = tonumber(b) or a
      if a and slot >= a and slot <= b then
        for _, node in ipairs(self.nodes) do
          if node.id == fields[1] then
            return node, slot
          end
        end
      end
    end
  end
  error("no node serves slot " .. tostring(slot))
end

--- Runs redis-cli against a node.
function Cluster.cli(_, node, ...)
  return M.cli({ port = node.port }, { ... })
end

--- Moves `slot` from node `from` to node `to` in the steps Redis documents, calling
-- between(step) after each: "migrating" (source MIGRATING, target IMPORTING, no key moved:
-- the source still answers), "moved-keys" (the keys MIGRATEd: the source answers ASK), "done"
-- (SETSLOT NODE everywhere: the source answers MOVED).
function Cluster:migrate(slot, from, to, between)
  between = between or function() end
  assert(self:cli(to, "CLUSTER", "SETSLOT", slot, "IMPORTING", from.id) == "OK")
  assert(self:cli(from, "CLUSTER", "SETSLOT", slot, "MIGRATING", to.id) == "OK")
  between("migrating")
  while true do
    local keys = self:cli(from, "CLUSTER", "GETKEYSINSLOT", slot, "100")
    if keys == "" then
      break
    end
    local args = { "MIGRATE", "127.0.0.1", tostring(to.port), "", "0", "5000", "KEYS" }
    for k in keys:gmatch("[^\n]+") do
      args[#args + 1] = k
    end
    local out = M.cli({ port = from.port }, args)
    assert(out == "OK", "MIGRATE: " .. out)
  end
  between("moved-keys")
  for _, node in ipairs({ to, from }) do
    assert(self:cli(node, "CLUSTER", "SETSLOT", slot, "NODE", to.id) == "OK")
  end
  for _, node in ipairs(self.nodes) do
    if node ~= to and node ~= from then
      self:cli(node, "CLUSTER", "SETSLOT", slot, "NODE", to.id)
    end
  end
  between("done")
end

function Cluster:stop()
  for _, node in ipairs(self.nodes) do
    if node.watchdog then
      M.cli({ port = node.port }, { "SHUTDOWN", "NOSAVE" })
      if not proc.wait(node.watchdog, 5) then
        proc.kill(node.watchdog, "TERM")
        proc.wait(node.watchdog, 5)
      end
      node.watchdog = nil
    end
    os.execute("rm -rf " .. q(node.dir))
  end
end

return M
