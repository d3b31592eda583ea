/* codec.h — Lua values to MessagePack bytes and back (SPEC §6, doc/FORMAT.md).
 * The only core file that includes lua.h. No OS calls, no segments, no locks: callers encode
 * before taking a segment's lock and decode after releasing it. */
#ifndef LXSHM_CODEC_H
#define LXSHM_CODEC_H

#include <stddef.h>

#include "compat.h"   /* lua.h and lauxlib.h of every runtime from 5.1 to 5.4 and LuaJIT */
#include "internal.h" /* LXSHM__CODEC_VERSION: the format version kept in every header */

#define LXSHM__MAX_DEPTH 200 /* tables nested deeper than this are refused (UNSUPPORTED) */

/* Reusable encoding state (output buffer, table-identity index), owned by a full userdata whose
 * __gc frees it. One per lua_State, kept as an upvalue by the binding. */
typedef struct lxshm__encoder lxshm__encoder;

/* Pushes a new encoder userdata and returns it. Raises only on memory errors. */
lxshm__encoder *lxshm__encoder_push(lua_State *L);

/* Encodes the value at stack index idx (an absent value encodes as nil). On LXSHM_OK, *out and
 * *len give the bytes: they stay valid until enc is used again, and no Lua allocation is needed
 * to read them. Fails with LXSHM_UNSUPPORTED (function, userdata, thread, nesting past
 * LXSHM__MAX_DEPTH; the message names the path, e.g. "value at .player.on_hit is a function";
 * also once enc's __gc has run, which only a finalizer running during lua_close can meet) or
 * LXSHM_INVALID_SIZE (the encoding would exceed `limit` bytes; encoding stops as soon as it
 * does). The stack is left as it was. Never calls a metamethod and makes no Lua allocation, so
 * no Lua code runs during the call. Raises only when memory (or the Lua stack) runs out, and
 * then only after enc is idle again. Re-entrant: a call made while enc is busy uses a private
 * spare encoder owned by enc. */
lxshm_status lxshm__encode(lua_State *L, lxshm__encoder *enc, int idx, size_t limit,
                           const char **out, size_t *len, lxshm_error *err);

/* Pushes the bytes out[0..len-1] that lxshm__encode gave with enc as a Lua string. Use this
 * instead of lua_pushlstring: on Lua 5.1, 5.2 and LuaJIT, lua_pushlstring may run the collector
 * before it copies, and a finalizer that encodes meanwhile would overwrite the bytes; during the
 * copy enc counts as busy, so such a finalizer takes a spare encoder. Raises only when memory
 * runs out (then enc stays marked busy, and later encodings use its spare). */
void lxshm__push_encoded(lua_State *L, lxshm__encoder *enc, const char *out, size_t len);

/* Keeps the bytes out that lxshm__encode gave with enc valid while Lua code runs (a hook while
 * a call waits): their encoder counts as busy, so encodings meanwhile take a spare. Returns
 * what lxshm__encoder_release takes (NULL when out is no encoder's output). */
lxshm__encoder *lxshm__encoder_hold(lxshm__encoder *enc, const char *out);
void lxshm__encoder_release(lxshm__encoder *held);

/* Writes the MessagePack header of the string s[0..n-1] (str when it is valid UTF-8, else bin;
 * n at most 4294967295) to p, which has room for LXSHM__STRING_HEADER_MAX bytes, and returns
 * its length: the header followed by the bytes is what lxshm__encode makes of that string. */
#define LXSHM__STRING_HEADER_MAX 5
size_t lxshm__string_header(const char *s, size_t n, unsigned char *p);

/* If p[0..n-1] is exactly one string (str or bin family), returns the length of its header:
 * the string is p[h..n-1]. Otherwise returns 0. Reads only p[0..n-1]. */
size_t lxshm__string_span(const char *p, size_t n);

/* Decodes exactly n bytes holding one MessagePack value. On LXSHM_OK pushes the value and
 * returns; on LXSHM_CORRUPT (malformed, truncated, trailing bytes, unrepresentable in Lua,
 * nested past LXSHM__MAX_DEPTH) pushes nothing and says what and at which byte offset in err.
 * Reads only p[0..n-1]; no allocation is sized by a length not yet checked against the bytes
 * left, and the tables open at any moment never presize more slots than the bytes left could
 * fill. Uses no encoder and no C heap. Raises only when memory (or the Lua stack) runs out; it
 * allocates, so finalizers may run during the call. The bytes must not change during the call
 * (pass a private copy, never a live mapping). */
lxshm_status lxshm__decode(lua_State *L, const char *p, size_t n, lxshm_error *err);

#endif
