/* topic_peer.c — a C host on a topic, for spec/topic_spec.lua: what a C program publishes
 * through lxshm.h reads back in Lua as strings, and what Lua publishes reaches C as the bytes
 * of its MessagePack encoding. The spec builds it from the core's sources (mk/sources.mk).
 *
 *   topic_peer publish NAME TEXT...       publishes each TEXT as raw bytes; prints the last seq
 *   topic_peer read NAME FROM COUNT       reads COUNT messages from sequence number FROM, each
 *                                         printed as "SEQ LOST HEX" on a line of its own */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lxshm.h"

static int failed(const char *what, lxshm_status st, const lxshm_error *err) {
  fprintf(stderr, "topic_peer: %s: %s (%s)\n", what, err->message, lxshm_status_name(st));
  return 1;
}

int main(int argc, char **argv) {
  lxshm_topic *t;
  lxshm_error err;
  lxshm_status st;
  int i;

  if (argc < 3 || (strcmp(argv[1], "read") == 0 && argc != 5)) {
    fprintf(stderr, "usage: topic_peer publish NAME TEXT... | read NAME FROM COUNT\n");
    return 2;
  }
  if ((st = lxshm_topic_open(argv[2], &t, &err)) != LXSHM_OK)
    return failed("open", st, &err);
  if (strcmp(argv[1], "publish") == 0) {
    uint64_t seq = 0;
    for (i = 3; i < argc; i++)
      if ((st = lxshm_topic_publish(t, argv[i], strlen(argv[i]), 5, &seq, &err)) != LXSHM_OK)
        return failed("publish", st, &err);
    printf("%llu\n", (unsigned long long)seq);
  }
  else {
    lxshm_subscription *sub;
    unsigned char buf[4096];
    int count = atoi(argv[4]);
    if ((st = lxshm_topic_subscribe(t, NULL, strtoull(argv[3], NULL, 10), &sub, &err)) != LXSHM_OK)
      return failed("subscribe", st, &err);
    for (i = 0; i < count; i++) {
      uint64_t seq, lost;
      size_t len, k;
      st = lxshm_subscription_next(sub, buf, sizeof buf, &len, &seq, &lost, 5, &err);
      if (st != LXSHM_OK)
        return failed("next", st, &err);
      printf("%llu %llu ", (unsigned long long)seq, (unsigned long long)lost);
      for (k = 0; k < len; k++)
        printf("%02x", buf[k]);
      printf("\n");
    }
    lxshm_subscription_close(sub);
  }
  lxshm_topic_close(t);
  return 0;
}
