/* dict_fuzz.c — libFuzzer target for dictionaries (src/dict.c), run under ASan+UBSan. Each input
 * is a sequence of operations on a new 16 KiB..64 KiB dictionary in one process (set, safe_set,
 * add, replace, cas, delete, incr, expire, update under a held stripe, flush_all, flush_expired,
 * get, ttl), checked against a model after every operation: values and versions as the model
 * says, keys evicted only by operations that report evictions, counts right, and check() whole
 * every few operations. At the end flush_all must give back every byte. Any other outcome aborts.
 *
 * Build and run from the repo root (make fuzz-dict, fuzz/README.md):
 *   build/fuzz/dict_fuzz -max_total_time=60 -artifact_prefix=fuzz/findings/ fuzz/work-dict
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "platform.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define KEYS 24
#define VALUE_MAX 6000

typedef struct model_key {
  int present;
  int counter; /* holds an integer stored by incr: `number` */
  int64_t number;
  size_t len; /* else: the value's bytes */
  unsigned char value[VALUE_MAX];
  uint64_t version; /* as the dictionary gave it */
} model_key;

static model_key model[KEYS];
static lxshm_dict *d;
static char name[64];

static void fail(const char *what, int op, int key) {
  fprintf(stderr, "dict_fuzz: %s (operation %d, key %d)\n", what, op, key);
  abort();
}

/* The input, read byte by byte; zeros once it is used up. */
typedef struct input {
  const uint8_t *p;
  size_t left;
} input;

static unsigned byte(input *in) {
  if (in->left == 0)
    return 0;
  in->left--;
  return *in->p++;
}

static void key_of(int k, char *buf, size_t *len) {
  /* a few long keys, so that key bytes take room too */
  if (k % 8 == 7) {
    memset(buf, 'L', 300);
    *len = 300 + (size_t)snprintf(buf + 300, 16, "%d", k);
    return;
  }
  *len = (size_t)snprintf(buf, 16, "key%d", k);
}

static size_t value_of(input *in, unsigned op, unsigned char *buf) {
  size_t len = (size_t)byte(in) * 24 + byte(in) % 24;
  size_t i;
  if (len > VALUE_MAX)
    len = VALUE_MAX;
  for (i = 0; i < len; i++)
    buf[i] = (unsigned char)(op * 31 + i);
  return len;
}

/* A key the dictionary dropped must have been dropped by an eviction the model allowed. */
static void check_key(int k, int op, int evictions_allowed) {
  char key[400];
  unsigned char buf[VALUE_MAX];
  size_t klen, len = 0;
  uint64_t version = 0;
  lxshm_status st;
  key_of(k, key, &klen);
  st = lxshm_dict_get(d, key, klen, buf, sizeof buf, &len, &version, NULL);
  if (!model[k].present) {
    if (st != LXSHM_NOT_FOUND)
      fail("a key the model says is absent is present", op, k);
    return;
  }
  if (st == LXSHM_NOT_FOUND && evictions_allowed) {
    model[k].present = 0; /* evicted */
    return;
  }
  if (st != LXSHM_OK)
    fail("a present key is not found", op, k);
  if (version != model[k].version)
    fail("the version differs from the model's", op, k);
  if (model[k].counter) {
    int64_t n;
    if (lxshm_dict_incr(d, key, klen, 0, 0, 0, 0, &n, NULL) != LXSHM_OK || n != model[k].number)
      fail("the counter differs from the model's", op, k);
    model[k].version = lxshm_dict_version(d, key, klen); /* incr 0 is a change too */
    return;
  }
  if (len != model[k].len || memcmp(buf, model[k].value, len) != 0)
    fail("the value differs from the model's", op, k);
}

static void check_all(int op, int evictions_allowed) {
  uint64_t present = 0;
  int k;
  for (k = 0; k < KEYS; k++) {
    check_key(k, op, evictions_allowed);
    present += (uint64_t)model[k].present;
  }
  if (lxshm_dict_count(d) != present)
    fail("count differs from the model's", op, -1);
}

static void stored(int k, const unsigned char *value, size_t len, uint64_t version) {
  model[k].present = 1;
  model[k].counter = 0;
  model[k].len = len;
  memcpy(model[k].value, value, len);
  model[k].version = version;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static unsigned char value[VALUE_MAX];
  input in = {data, size};
  uint64_t capacity = 16384 + (uint64_t)(byte(&in) % 13) * 4096, fresh;
  lxshm_error err;
  int op;

  snprintf(name, sizeof name, "fz%lu.dict", (unsigned long)lxshm__pid());
  lxshm_remove(name, NULL);
  if (lxshm_dict_create(name, capacity, 0600, &d, &err) != LXSHM_OK) {
    fprintf(stderr, "dict_fuzz: create: %s\n", err.message);
    abort();
  }
  fresh = lxshm_dict_free_space(d);
  memset(model, 0, sizeof model);
  for (op = 0; in.left > 0 && op < 400; op++) {
    unsigned what = byte(&in) % 14;
    int k = (int)(byte(&in) % KEYS), evicting = 0;
    lxshm__figures before, after;
    char key[400];
    size_t klen, len;
    uint64_t version = 0, evicted = 0, n;
    lxshm_status st = LXSHM_OK;
    key_of(k, key, &klen);
    lxshm__figures_get(d, &before);
    switch (what) {
      case 0: /* set */
      case 1: /* safe_set */
      case 2: /* add */
      case 3: /* replace */
      {
        unsigned flags = what == 1   ? LXSHM_DICT_SAFE
                         : what == 2 ? LXSHM_DICT_ADD | (byte(&in) & 1 ? LXSHM_DICT_SAFE : 0)
                         : what == 3 ? LXSHM_DICT_REPLACE
                                     : 0;
        len = value_of(&in, (unsigned)op, value);
        st = lxshm_dict_set(d, key, klen, value, len, 0, flags, &version, &evicted, &err);
        evicting = !(flags & LXSHM_DICT_SAFE);
        if (st == LXSHM_OK) {
          if ((flags & LXSHM_DICT_ADD) && model[k].present)
            fail("add stored over a present key", op, k);
          if ((flags & LXSHM_DICT_REPLACE) && !model[k].present)
            fail("replace stored an absent key", op, k);
          stored(k, value, len, version);
        }
        else if (st == LXSHM_EXISTS) {
          if (!model[k].present)
            fail("add found a key the model says is absent", op, k);
        }
        else if (st == LXSHM_NOT_FOUND) {
          if (model[k].present)
            fail("replace missed a present key", op, k);
        }
        else if (st != LXSHM_FULL || (evicting && !(flags & LXSHM_DICT_REPLACE))) {
          fail(err.message, op, k); /* a replace may find its own value in the way */
        }
        break;
      }
      case 4: { /* cas, with the right version or a wrong one */
        uint64_t expected = model[k].present ? model[k].version : 0;
        int wrong = byte(&in) & 1;
        len = value_of(&in, (unsigned)op, value);
        st =
            lxshm_dict_cas(d, key, klen, expected + (uint64_t)wrong, value, len, 0, &version, &err);
        if (wrong && st != LXSHM_CONFLICT)
          fail("cas with a wrong version did not conflict", op, k);
        if (!wrong && st != LXSHM_OK && st != LXSHM_FULL) /* FULL: its own value in the way */
          fail(err.message, op, k);
        if (st == LXSHM_OK)
          stored(k, value, len, version);
        break;
      }
      case 5: /* delete */
        if (lxshm_dict_delete(d, key, klen, &err) != LXSHM_OK)
          fail(err.message, op, k);
        model[k].present = 0;
        break;
      case 6: { /* incr */
        int64_t sum, step = (int64_t)byte(&in) - 128;
        st = lxshm_dict_incr(d, key, klen, step, 1, 1000, 0, &sum, &err);
        if (model[k].present && !model[k].counter) {
          if (st != LXSHM_INVALID)
            fail("incr of a raw value did not fail", op, k);
          break;
        }
        if (st != LXSHM_OK)
          fail(err.message, op, k);
        if (sum != (model[k].present ? model[k].number : 1000) + step)
          fail("incr summed wrongly", op, k);
        model[k].present = 1;
        model[k].counter = 1;
        model[k].number = sum;
        model[k].version = lxshm_dict_version(d, key, klen);
        break;
      }
      case 7: { /* expire far away, or remove the expiry; ttl */
        double secs;
        st = lxshm_dict_expire(d, key, klen, byte(&in) & 1 ? 10000 : 0, &err);
        if (st != (model[k].present ? LXSHM_OK : LXSHM_NOT_FOUND))
          fail("expire's status differs from the model's", op, k);
        st = lxshm_dict_ttl(d, key, klen, &secs, &err);
        if (st != (model[k].present ? LXSHM_OK : LXSHM_NOT_FOUND))
          fail("ttl's status differs from the model's", op, k);
        break;
      }
      case 8: { /* update: lock the key's stripe, read, store */
        lxshm__dict_key dk;
        lxshm__dict_held held;
        unsigned char cur[VALUE_MAX];
        size_t curlen;
        unsigned fmt;
        int del = (byte(&in) % 5) == 0;
        dk.data = key;
        dk.len = klen;
        dk.type = LXSHM__KEY_STRING;
        len = value_of(&in, (unsigned)op, value);
        if (lxshm__dict_lock_key(d, &dk, &held, &err) != LXSHM_OK)
          fail(err.message, op, k);
        st = lxshm__dict_current_locked(d, &held, cur, sizeof cur, &curlen, &fmt, &err);
        if (st != (model[k].present ? LXSHM_OK : LXSHM_NOT_FOUND))
          fail("update read a value the model does not have", op, k);
        st = lxshm__dict_store_locked(d, &held, del ? NULL : value, len, LXSHM__FORMAT_RAW, 0,
                                      &version, &evicted, &err);
        lxshm__dict_unlock_key(d, &held);
        if (st == LXSHM_OK) {
          if (del)
            model[k].present = 0;
          else
            stored(k, value, len, version);
        }
        else if (st != LXSHM_FULL) {
          fail(err.message, op, k);
        }
        break;
      }
      case 9: /* flush_all, now and then */
        if (byte(&in) % 8 == 0) {
          if (lxshm_dict_flush_all(d, &err) != LXSHM_OK)
            fail(err.message, op, k);
          memset(model, 0, sizeof model);
          if (lxshm_dict_free_space(d) != fresh)
            fail("flush_all did not give back every byte", op, k);
        }
        break;
      case 10: /* flush_expired: nothing expires here */
        if (lxshm_dict_flush_expired(d, byte(&in), &n, &err) != LXSHM_OK || n != 0)
          fail("flush_expired reclaimed a key that has not expired", op, k);
        break;
      case 11: /* a store of exactly free_space(): fits without evicting */
        n = lxshm_dict_free_space(d);
        if (n >= klen && n - klen <= VALUE_MAX) {
          len = n - klen;
          memset(value, (int)op, len);
          if (model[k].present) {
            if (lxshm_dict_delete(d, key, klen, &err) != LXSHM_OK)
              fail(err.message, op, k);
            model[k].present = 0;
            n = lxshm_dict_free_space(d);
            if (n < klen + len)
              fail("a delete shrank free_space()", op, k);
          }
          st = lxshm_dict_set(d, key, klen, value, len, 0, LXSHM_DICT_SAFE, &version, NULL, &err);
          if (st != LXSHM_OK)
            fail("free_space() promised room that was not there", op, k);
          stored(k, value, len, version);
        }
        break;
      default: /* look */
        check_key(k, op, 0);
        break;
    }
    /* Keys may have gone only if this operation evicted some, and only as many as it says; a
     * change that fails with FULL evicts nothing. */
    lxshm__figures_get(d, &after);
    if (st == LXSHM_FULL && after.dict.evictions != before.dict.evictions)
      fail("a change that failed with FULL evicted keys", op, k);
    if (what <= 3 && after.dict.evictions - before.dict.evictions != evicted)
      fail("a store reported evictions that did not happen, or hid some", op, k);
    if (!evicting && what <= 3 && evicted != 0)
      fail("a safe store evicted", op, k);
    check_all(op, after.dict.evictions != before.dict.evictions);
    if (op % 16 == 15 && lxshm_dict_check(d, &err) != LXSHM_OK)
      fail(err.message, op, -1);
  }
  if (lxshm_dict_check(d, &err) != LXSHM_OK)
    fail(err.message, op, -1);
  if (lxshm_dict_flush_all(d, &err) != LXSHM_OK || lxshm_dict_free_space(d) != fresh)
    fail("flush_all at the end did not give back every byte", op, -1);
  lxshm_dict_close(d);
  lxshm_remove(name, NULL);
  return 0;
}
