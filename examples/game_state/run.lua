--- Runs the game and the overlay side by side for a few seconds.
--   LUA_PATH='lua/?.lua;;' LUA_CPATH='build/?.so;;' lua5.4 examples/game_state/run.lua
local name = ("game-%d-%d.state"):format(os.time(), math.random(1, 1e9))
local lua = arg[-1] or "lua5.4"
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
local game = assert(io.popen(("%s %s/game.lua %s 2"):format(lua, dir, name), "w"))
local ok = os.execute(("%s %s/overlay.lua %s"):format(lua, dir, name))
assert(ok == true or ok == 0, "the overlay failed") -- 0 from Lua 5.1 and LuaJIT
assert(game:close(), "the game failed")
