// The floor for node-toa's first call on a connection: the bare syscalls, with no Node, no N-API
// and no parsing. Accepts fresh loopback connections on a listener with TCP_SAVE_SYN, then times
//   both:     getsockopt(TCP_SAVED_SYN) + getpeername   (what a TOA reader needs at most)
//   savedsyn: getsockopt(TCP_SAVED_SYN) alone           (enough when the SYN is there)
//   peername: getpeername alone                         (what socket.remoteAddress costs)
// each over its own batch of fresh sockets (a saved SYN can be read only once), one sample per
// batch. Prints one JSON object: per-round ns per connection and their medians.
//
//   cc -O2 -o build-bench/syscall-floor bench/syscall-floor.c
//   build-bench/syscall-floor [connections-per-batch=200] [rounds=30]
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef TCP_SAVE_SYN
#define TCP_SAVE_SYN 27
#endif
#ifndef TCP_SAVED_SYN
#define TCP_SAVED_SYN 28
#endif

enum { MAX_BATCH = 2000, MAX_ROUNDS = 1000, SYN_BUFFER = 512 };
enum measure { BOTH, SAVEDSYN, PEERNAME, MEASURES };
static const char* const kNames[MEASURES] = {"both", "savedsyn", "peername"};

static void die(const char* what) {
  fprintf(stderr, "syscall-floor: %s: %s\n", what, strerror(errno));
  exit(1);
}

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int compare_double(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

static double median(double* values, int count) {
  qsort(values, count, sizeof *values, compare_double);
  return count % 2 ? values[count / 2] : (values[count / 2 - 1] + values[count / 2]) / 2;
}

static int listener(struct sockaddr_in* addr) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  socklen_t size = sizeof *addr;
  if (fd < 0) die("socket");
  memset(addr, 0, sizeof *addr);
  addr->sin_family = AF_INET;
  addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (setsockopt(fd, IPPROTO_TCP, TCP_SAVE_SYN, &one, sizeof one) != 0) die("setsockopt(TCP_SAVE_SYN)");
  if (bind(fd, (struct sockaddr*)addr, sizeof *addr) != 0) die("bind");
  if (listen(fd, 4096) != 0) die("listen");
  if (getsockname(fd, (struct sockaddr*)addr, &size) != 0) die("getsockname");
  return fd;
}

// Connects `count` clients and accepts them: loopback connect() completes while the backlog has
// room, so this needs no event loop.
static void open_batch(int lfd, const struct sockaddr_in* addr, int count, int* clients, int* accepted) {
  for (int i = 0; i < count; i++) {
    clients[i] = socket(AF_INET, SOCK_STREAM, 0);
    if (clients[i] < 0) die("socket (client)");
    if (connect(clients[i], (const struct sockaddr*)addr, sizeof *addr) != 0) die("connect");
  }
  for (int i = 0; i < count; i++) {
    accepted[i] = accept(lfd, NULL, NULL);
    if (accepted[i] < 0) die("accept");
  }
}

static void close_batch(int count, int* clients, int* accepted) {
  for (int i = 0; i < count; i++) {
    close(accepted[i]);
    close(clients[i]);
  }
}

// Returns ns per connection; counts sockets whose saved SYN was missing in *missing.
static double time_batch(enum measure m, int count, const int* fds, int* missing) {
  unsigned char syn[SYN_BUFFER];
  struct sockaddr_storage peer;
  const long long start = now_ns();
  for (int i = 0; i < count; i++) {
    if (m != PEERNAME) {
      socklen_t size = sizeof syn;
      if (getsockopt(fds[i], IPPROTO_TCP, TCP_SAVED_SYN, syn, &size) != 0 || size == 0) ++*missing;
    }
    if (m != SAVEDSYN) {
      socklen_t size = sizeof peer;
      if (getpeername(fds[i], (struct sockaddr*)&peer, &size) != 0) die("getpeername");
    }
  }
  return (double)(now_ns() - start) / count;
}

int main(int argc, char** argv) {
  const int batch = argc > 1 ? atoi(argv[1]) : 200;
  const int rounds = argc > 2 ? atoi(argv[2]) : 30;
  if (batch < 1 || batch > MAX_BATCH || rounds < 1 || rounds > MAX_ROUNDS) {
    fprintf(stderr, "usage: syscall-floor [connections-per-batch 1..%d] [rounds 1..%d]\n", MAX_BATCH, MAX_ROUNDS);
    return 2;
  }
  static int clients[MAX_BATCH], accepted[MAX_BATCH];
  static double samples[MEASURES][MAX_ROUNDS];
  struct sockaddr_in addr;
  const int lfd = listener(&addr);
  int missing = 0;

  for (int r = 0; r < rounds; r++) {
    // Rotate which measure goes first, so none always gets the warmest caches.
    for (int k = 0; k < MEASURES; k++) {
      const enum measure m = (enum measure)((r + k) % MEASURES);
      open_batch(lfd, &addr, batch, clients, accepted);
      samples[m][r] = time_batch(m, batch, accepted, &missing);
      close_batch(batch, clients, accepted);
    }
  }
  close(lfd);

  printf("{\"batch\":%d,\"rounds\":%d,\"missingSyn\":%d", batch, rounds, missing);
  for (int m = 0; m < MEASURES; m++) {
    printf(",\"%s\":{\"samples\":[", kNames[m]);
    for (int r = 0; r < rounds; r++) printf("%s%.1f", r ? "," : "", samples[m][r]);
    printf("],\"median\":%.1f}", median(samples[m], rounds));
  }
  printf("}\n");
  return missing == 0 ? 0 : 3;
}
