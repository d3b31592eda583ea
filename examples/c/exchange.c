/* exchange.c — a C host using lxshm.h: two processes hand each other a message through one
 * segment, each sleeping in lxshm_wait until the other commits. The same code builds on Linux
 * and, with mingw-w64, on Windows; only the platform file linked in differs.
 *
 *   Linux:    make build/exchange, or against an installed lxshm (make install-dev):
 *               cc -std=c11 -o exchange examples/c/exchange.c -llxshm
 *   Windows:  make windows   (build/win/exchange.exe, linked with build/win/liblxshm.a)
 *
 *   exchange wait NAME        creates NAME, waits for a message, answers it, removes NAME
 *   exchange send NAME TEXT   sends TEXT to a waiting `exchange wait NAME`, prints the answer */
#include <stdio.h>
#include <string.h>

#include "lxshm.h"

#define CAPACITY 256  /* bytes of one message */
#define PATIENCE 30.0 /* seconds either side waits for the other */

/* Prints what failed and returns the exit status for a failure. */
static int failed(const char *name, const char *what, lxshm_status st, const lxshm_error *err) {
  fprintf(stderr, "exchange: %s: %s: %s (%s)\n", name, what,
          err->message[0] ? err->message : lxshm_strerror(st), lxshm_status_name(st));
  return 1;
}

/* Reads the current value as a string into buf (cap bytes, room for the terminating zero). */
static lxshm_status read_text(lxshm_segment *seg, char *buf, size_t cap, lxshm_error *err) {
  size_t len = 0;
  lxshm_status st = lxshm_read(seg, buf, cap - 1, &len, NULL, err);
  buf[st == LXSHM_OK ? len : 0] = '\0';
  return st;
}

static int wait_side(const char *name) {
  char message[CAPACITY + 1], answer[CAPACITY];
  lxshm_segment *seg;
  lxshm_error err;
  lxshm_status st;

  if ((st = lxshm_create(name, CAPACITY, LXSHM_DEFAULT_MODE, &seg, &err)) != LXSHM_OK)
    return failed(name, "create", st, &err);
  printf("ready: waiting on %s\n", name);
  fflush(stdout);
  /* Version 0 is the empty segment: the sender's write makes it 1. */
  if ((st = lxshm_wait(seg, 0, PATIENCE, NULL, &err)) == LXSHM_OK &&
      (st = read_text(seg, message, sizeof message, &err)) == LXSHM_OK) {
    printf("received: %s\n", message);
    snprintf(answer, sizeof answer, "got %zu bytes", strlen(message));
    st = lxshm_write(seg, answer, strlen(answer), PATIENCE, &err);
  }
  /* The sender's handle keeps working after the name is gone (SPEC §4). */
  lxshm_remove(name, NULL);
  lxshm_close(seg);
  return st == LXSHM_OK ? 0 : failed(name, "exchange", st, &err);
}

static int send_side(const char *name, const char *text) {
  char answer[CAPACITY + 1];
  lxshm_segment *seg;
  lxshm_error err;
  lxshm_status st;
  uint64_t sent;

  if ((st = lxshm_open(name, &seg, &err)) != LXSHM_OK)
    return failed(name, "open (start `exchange wait NAME` first)", st, &err);
  if ((st = lxshm_write(seg, text, strlen(text), PATIENCE, &err)) == LXSHM_OK) {
    sent = lxshm_version(seg); /* a racing answer makes this 2 already: the wait returns at once */
    if (sent == 1)
      st = lxshm_wait(seg, sent, PATIENCE, NULL, &err);
    if (st == LXSHM_OK && (st = read_text(seg, answer, sizeof answer, &err)) == LXSHM_OK)
      printf("answer: %s\n", answer);
  }
  lxshm_close(seg);
  return st == LXSHM_OK ? 0 : failed(name, "exchange", st, &err);
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "wait") == 0)
    return wait_side(argv[2]);
  if (argc == 4 && strcmp(argv[1], "send") == 0)
    return send_side(argv[2], argv[3]);
  fprintf(stderr, "usage: exchange wait NAME | exchange send NAME TEXT\n");
  return 2;
}
