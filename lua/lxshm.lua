--- lxshm: Lua values shared between processes on one machine, through named shared memory.
-- This is the module `require("lxshm")` returns. The work is done by the C module lxshm.core;
-- this file only presents it, so that there is one implementation of every operation.
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

return lxshm
