/* topic.c — lxshm.topic on Redis: not yet; the constructors make the object, it has no methods. */
#include "rx.h"

static const luaL_Reg methods[] = {{NULL, NULL}};

static void describe(lua_State *L, rx_handle *h) {
  (void)h;
  lua_pushliteral(L, "()");
}

const rx_class rx_topic_class = {
    "lxshm.redis.topic", "lxshm.topic", "topic", "_topic", methods, describe, NULL};
