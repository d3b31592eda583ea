/* name.c — what an object's name may be (SPEC §2): 1 to LXSHM_NAME_MAX bytes of A-Z a-z 0-9 . _ -,
 * not starting with . or -. The one check behind creating, opening and removing objects, naming
 * subscriptions, and the name arguments of both Lua modules. Pure (no OS, no Lua, no state), so
 * lxshm.redis links it too. */
#include "internal.h"

static int name_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

size_t lxshm__name_len(const char *name) {
  size_t len = 0;
  if (name != NULL) /* never reads past a too-long name's limit */
    while (len <= LXSHM_NAME_MAX && name[len] != '\0')
      len++;
  return len;
}

lxshm_status lxshm__check_name(const char *name, size_t len, const char *what, lxshm_error *err) {
  size_t i;
  int good = len > 0 && len <= LXSHM_NAME_MAX && name[0] != '.' && name[0] != '-';
  for (i = 0; good && i < len; i++)
    good = name_char((unsigned char)name[i]);
  if (good)
    return LXSHM_OK;
  return lxshm__fail(err, LXSHM_INVALID,
                     "invalid %sname: use 1-%d characters from A-Z a-z 0-9 . _ -, not starting "
                     "with . or -",
                     what, LXSHM_NAME_MAX);
}

lxshm_status lxshm_check_name(const char *name) {
  return lxshm__check_name(name, lxshm__name_len(name), "", NULL);
}
