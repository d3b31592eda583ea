--- lxshm: Lua values shared between processes on one machine, through named shared memory.
-- This is the module `require("lxshm")` returns. The work is done by the C module lxshm.core;
-- this file only presents it, so that there is one implementation of every operation.
-- `lxshm.connect(url)` picks a backend: "shm:" is this machine (lxshm.core), "redis://" and
-- "redis+unix://" a Redis server or Cluster (the C module lxshm.redis, loaded on first use).
local core = require("lxshm.core")

local lxshm = {}
for k, v in pairs(core) do
  lxshm[k] = v
end

--- Status names by code: `lxshm.codes[lxshm.EXISTS] == "EXISTS"`.
lxshm.codes = {}
for code = 0, 63 do
  local _, name = core.strerror(code)
  if name ~= "UNKNOWN" then
    lxshm.codes[code] = name
  end
end

-- The constructors a namespace has, by kind, as SPEC §12 lists them (plus attach_queue).
local constructors = {
  "create", "open", "attach", "create_queue", "open_queue", "attach_queue",
  "create_dict", "open_dict", "attach_dict", "create_topic", "open_topic", "attach_topic",
}

--- The local namespace: the module's constructors as methods, so that `ns:create(...)` is
-- `lxshm.create(...)`. A kind this build lacks answers nil, msg, UNSUPPORTED.
local shm = {}

-- A method that calls `fn` as a local named after the method (never a tail call), so that an
-- argument error reads "bad argument #1 to 'create'", counted as lxshm.create counts them.
local function method(verb, fn)
  local chunk = ("local %s = ... return function(_, ...) local a, b, c = %s(...) "
    .. "return a, b, c end"):format(verb, verb)
  return assert((rawget(_G, "loadstring") or load)(chunk, "=lxshm.connect"))(fn)
end

for _, verb in ipairs(constructors) do
  local fn = core[verb]
  if fn then
    shm[verb] = method(verb, fn)
  else
    shm[verb] = function()
      return nil, verb .. ": not in this build of lxshm", core.UNSUPPORTED
    end
  end
end
shm.remove = method("remove", core.remove)
shm.open_any = method("open_any", core.open_any)
shm.list = method("list", core.list)
function shm.url()
  return "shm:"
end
function shm.cluster()
  return false
end
function shm.close() end
local namespace = setmetatable(shm, {
  __name = "lxshm.namespace",
  __tostring = function() return "lxshm.namespace: shm:" end,
})

local redis -- lxshm.redis once loaded, or false with the reason it is not there
local redis_why

--- lxshm.connect(url [, opts]) -> namespace | nil, msg, code
-- "shm:" gives this machine's namespace; "redis://HOST:PORT[/DB]" and
-- "redis+unix:///PATH[?db=N]" a Redis server or Cluster (opts: password, prefix, timeout,
-- cluster). An unreachable server is nil, msg, UNAVAILABLE; a missing Redis backend is
-- nil, msg, UNSUPPORTED.
function lxshm.connect(url, opts)
  if type(url) ~= "string" then
    error(("bad argument #1 to 'connect' (string expected, got %s)"):format(
      url == nil and "no value" or type(url)), 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error(("bad argument #2 to 'connect' (table expected, got %s)"):format(type(opts)), 2)
  end
  if url == "shm:" or url == "shm://" then
    if opts ~= nil and next(opts) ~= nil then
      error("bad argument #2 to 'connect' (shm: takes no options)", 2)
    end
    return namespace
  end
  if url:sub(1, 8) == "redis://" or url:sub(1, 13) == "redis+unix://" then
    if redis == nil then
      local ok, mod = pcall(require, "lxshm.redis")
      if ok then
        redis = mod
      else
        redis = false
        redis_why = tostring(mod)
      end
    end
    if not redis then
      local missing = redis_why:find("module 'lxshm.redis' not found", 1, true)
      return nil, "connect: the Redis backend (lxshm.redis) is not installed: install "
        .. "libhiredis-dev (sudo apt-get install -y libhiredis-dev) and build again (make)"
        .. (missing and "" or ("; loading it failed: " .. redis_why)), core.UNSUPPORTED
    end
    local connect = redis.connect -- a local, not a tail call: errors name 'connect'
    local a, b, c = connect(url, opts)
    return a, b, c
  end
  return nil, ("connect: unsupported URL %q: use shm:, redis://HOST:PORT[/DB] or "
    .. "redis+unix:///PATH[?db=N]"):format(url), core.INVALID
end

return lxshm
