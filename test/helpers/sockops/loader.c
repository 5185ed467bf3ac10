// Loads toa_sockops.bpf.o, makes a cgroup and attaches the program to it through a bpf_link
// held by this process, so that the program goes away with the process however it ends.
// Driven by test/helpers/sockops/index.ts over stdin/stdout, one JSON line per answer:
//
//   loader OBJ CGROUP_DIR PACKETS KIND BASE_IPV4 [RAW_HEX]
//     PACKETS: bit mask, 1 SYN, 2 handshake ACK, 4 first data packet
//   stdout: {"ready":true,...} once attached; stdin "stats" -> the program's counters
//   stdin EOF, SIGTERM, SIGINT, SIGHUP or the parent's death: detach, kill what is left in the
//   cgroup, remove it, exit.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#define TOA_LEN 8

// Keep in step with toa_sockops.bpf.c.
struct toa_config {
  uint32_t packets;
  uint32_t base;
  uint8_t kind;
  uint8_t raw_len;
  uint8_t pad[2];
  uint8_t raw[TOA_LEN];
};

static const char *const kCounters[] = {"connects", "syn", "ack", "data", "reserveFail", "storeFail", "noStorage"};
#define N_COUNTERS (sizeof kCounters / sizeof kCounters[0])

static char cgroup_dir[4096];
static int cgroup_made;

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "sockops loader: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  if (cgroup_made) rmdir(cgroup_dir);
  exit(1);
}

static void sleep_ms(long ms) {
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&t, NULL);
}

static int write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  ssize_t n = write(fd, text, strlen(text));
  int err = n < 0 ? -errno : 0;
  close(fd);
  return err;
}

// Moves whatever still runs in the cgroup out of it (to the parent), for kernels without
// cgroup.kill. Bounded by the file's size.
static void evacuate(void) {
  char procs[4200], parent_procs[4200], line[32];
  const char *slash = strrchr(cgroup_dir, '/');
  if (!slash || slash == cgroup_dir) return;
  snprintf(procs, sizeof procs, "%s/cgroup.procs", cgroup_dir);
  snprintf(parent_procs, sizeof parent_procs, "%.*s/cgroup.procs", (int)(slash - cgroup_dir), cgroup_dir);
  FILE *f = fopen(procs, "re");
  if (!f) return;
  for (int i = 0; i < 100000 && fgets(line, sizeof line, f); i++) write_file(parent_procs, line);
  fclose(f);
}

static void remove_cgroup(void) {
  char kill_path[4200];
  snprintf(kill_path, sizeof kill_path, "%s/cgroup.kill", cgroup_dir);
  // Clients still running when the test ends (a timeout, a crash) must not outlive it.
  if (write_file(kill_path, "1") != 0) evacuate();
  // Killed tasks leave the cgroup asynchronously: rmdir says EBUSY until they have.
  for (int i = 0; i < 500; i++) {
    if (rmdir(cgroup_dir) == 0 || errno == ENOENT) return;
    if (errno != EBUSY) break;
    if (i == 250) evacuate();
    sleep_ms(10);
  }
  fprintf(stderr, "sockops loader: cannot remove %s: %s\n", cgroup_dir, strerror(errno));
}

static int hex_nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static void print_stats(int counters_fd) {
  printf("{\"stats\":true");
  for (uint32_t i = 0; i < N_COUNTERS; i++) {
    uint64_t v = 0;
    if (bpf_map_lookup_elem(counters_fd, &i, &v) != 0) v = 0;
    printf(",\"%s\":%llu", kCounters[i], (unsigned long long)v);
  }
  printf("}\n");
  fflush(stdout);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap) {
  if (level == LIBBPF_DEBUG) return 0;
  return vfprintf(stderr, fmt, ap);
}

int main(int argc, char **argv) {
  if (argc != 6 && argc != 7) {
    fprintf(stderr, "usage: %s OBJ CGROUP_DIR PACKETS KIND BASE_IPV4 [RAW_HEX]\n", argv[0]);
    return 2;
  }
  // The stdin pipe closes when the parent dies too; this covers a pipe kept open by accident.
  // Compared with the parent of before, not with 1: the parent may be pid 1 in a container.
  pid_t parent = getppid();
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) return 1;

  struct toa_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.packets = (uint32_t)strtoul(argv[3], NULL, 0);
  cfg.kind = (uint8_t)strtoul(argv[4], NULL, 0);
  struct in_addr base;
  if (inet_pton(AF_INET, argv[5], &base) != 1) die("bad IPv4 address '%s'", argv[5]);
  cfg.base = ntohl(base.s_addr);
  if (argc == 7) {
    size_t n = strlen(argv[6]);
    if (n < 4 || n > 2 * TOA_LEN || n % 2) die("raw option must be 2 to %d bytes of hex", TOA_LEN);
    for (size_t i = 0; i < n / 2; i++) {
      int hi = hex_nibble(argv[6][2 * i]), lo = hex_nibble(argv[6][2 * i + 1]);
      if (hi < 0 || lo < 0) die("raw option '%s' is not hex", argv[6]);
      cfg.raw[i] = (uint8_t)(hi << 4 | lo);
    }
    cfg.raw_len = (uint8_t)(n / 2);
    if (cfg.raw[1] < 2 || cfg.raw[1] > cfg.raw_len) die("raw option's length byte must be 2 to %u", cfg.raw_len);
  }

  // Signals become readable events, so cleanup runs in one place and never inside a handler.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  sigaddset(&mask, SIGPIPE);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
  if (sfd < 0) die("signalfd: %s", strerror(errno));

  libbpf_set_print(libbpf_print);
  if (snprintf(cgroup_dir, sizeof cgroup_dir, "%s", argv[2]) >= (int)sizeof cgroup_dir) die("cgroup path too long");
  if (mkdir(cgroup_dir, 0755) != 0) die("mkdir %s: %s", cgroup_dir, strerror(errno));
  cgroup_made = 1;
  int cgfd = open(cgroup_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cgfd < 0) die("open %s: %s", cgroup_dir, strerror(errno));

  struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
  if (!obj) die("open %s: %s", argv[1], strerror(errno));
  if (bpf_object__load(obj) != 0) die("load %s: %s (the kernel log is above)", argv[1], strerror(errno));
  struct bpf_program *prog = bpf_object__find_program_by_name(obj, "toa_sockops");
  struct bpf_map *config = bpf_object__find_map_by_name(obj, "toa_config");
  struct bpf_map *counters = bpf_object__find_map_by_name(obj, "toa_counters");
  if (!prog || !config || !counters) die("%s lacks toa_sockops, toa_config or toa_counters", argv[1]);
  uint32_t zero = 0;
  if (bpf_map_update_elem(bpf_map__fd(config), &zero, &cfg, BPF_ANY) != 0) die("config: %s", strerror(errno));
  struct bpf_link *link = bpf_program__attach_cgroup(prog, cgfd);
  if (!link) die("attach to %s: %s", cgroup_dir, strerror(errno));

  printf("{\"ready\":true,\"cgroup\":\"%s\",\"pid\":%d}\n", cgroup_dir, (int)getpid());
  fflush(stdout);

  char line[256];
  size_t have = 0;
  for (;;) {
    struct pollfd fds[2] = {{0, POLLIN, 0}, {sfd, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents) break;
    if (!fds[0].revents) continue;
    ssize_t n = read(0, line + have, sizeof line - 1 - have);
    if (n <= 0) break;
    have += (size_t)n;
    char *nl;
    while ((nl = memchr(line, '\n', have)) != NULL) {
      *nl = '\0';
      if (strcmp(line, "stats") == 0) print_stats(bpf_map__fd(counters));
      size_t used = (size_t)(nl - line) + 1;
      memmove(line, nl + 1, have - used);
      have -= used;
    }
    if (have == sizeof line - 1) have = 0;  // a line that long is no command
  }

  bpf_link__destroy(link);
  bpf_object__close(obj);
  close(cgfd);
  remove_cgroup();
  return 0;
}
