--- examples/job_queue runs unchanged against Redis: only LXSHM_URL changes.
local lxshm = require("lxshm")
local util = require("util")
local servers = require("redis_server")
local proc = util.proc

after_each(util.cleanup)

describe("examples/job_queue", function()
  if not servers.backend() then
    it("needs the Redis backend: connect says how to get it", function()
      local _, _, code = lxshm.connect("redis+unix:///nonexistent")
      assert.equal(lxshm.UNSUPPORTED, code)
    end)
    return
  end

  for _, kind in ipairs({ "single", "cluster" }) do
    it("runs with LXSHM_URL pointing at a Redis " .. (kind == "single" and "server" or "Cluster"),
      function()
        local server = servers[kind]()
        util.defer(function() server:stop() end)
        local out, err = os.tmpname(), os.tmpname()
        util.defer(function()
          os.remove(out)
          os.remove(err)
        end)
        local pid = assert(proc.spawn({ util.LUA, "examples/job_queue/run.lua" }, {
          stdout = out,
          stderr = err,
          env = { LUA_PATH = package.path, LUA_CPATH = package.cpath, LXSHM_URL = server.url },
        }))
        local how, code = proc.wait(pid, 60 * util.SLOW)
        if not how then
          proc.kill(pid, "KILL")
          proc.wait(pid, 5)
        end
        assert.equal("exit 0", tostring(how) .. " " .. tostring(code), util.slurp(err))
        assert.matches("60 results, each job done once", util.slurp(out))
        local ns = assert(lxshm.connect(server.url))
        assert.equal("", ns:cluster() and "" or server:cli("KEYS", "{lxshm:jobs-*}"))
        ns:close()
      end)
  end
end)
