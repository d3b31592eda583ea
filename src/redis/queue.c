/* queue.c — lxshm.queue on Redis: not yet; the constructors make the object, it has no methods. */
#include "rx.h"

static const luaL_Reg methods[] = {{NULL, NULL}};

static void describe(lua_State *L, rx_handle *h) {
  (void)h;
  lua_pushliteral(L, "()");
}

const rx_class rx_queue_class = {
    "lxshm.redis.queue", "lxshm.queue", "queue", "_queue", methods, describe, NULL};
