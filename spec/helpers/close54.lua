--- The parts of the specs written in Lua 5.4 syntax: the `<close>` attribute, which no other
-- runtime can even parse. Specs load this file only where util.HAS_CLOSE says the syntax exists,
-- and assert what replaces it on the other runtimes (__gc closes handles everywhere).
local close54 = {}

--- Calls open() into a to-be-closed variable, then inside(handle) in its scope; the handle's
-- __close has run when this returns.
function close54.scope(open, inside)
  do
    local handle <close> = open()
    inside(handle)
  end
end

--- As scope, but inside raises: returns the error, caught after the scope unwound, so that the
-- handle's __close has run on the way out.
function close54.scope_raising(open, inside)
  return select(2, pcall(function()
    local handle <close> = open()
    inside(handle)
    error("inside returned instead of raising")
  end))
end

return close54
