// The kernel's run count and run time of BPF programs, by id: what a server's sock_ops program
// costs in the softirq that runs it, which no process's CPU time shows (on loopback the client's
// CPU runs it). The kernel counts only while kernel.bpf_stats_enabled is 1 (preload-http sets it
// for its run). Prints one JSON object: {"<id>": {"runs": N, "ns": N}, ...}; an id that is gone
// is left out.
//
//   cc -O2 -o build-bench/bpf-run-time bench/bpf-run-time.c
//   build-bench/bpf-run-time ID...
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static long bpf(int cmd, union bpf_attr* attr) { return syscall(__NR_bpf, cmd, attr, sizeof *attr); }

int main(int argc, char** argv) {
  const char* separator = "";
  printf("{");
  for (int i = 1; i < argc; i++) {
    union bpf_attr by_id;
    memset(&by_id, 0, sizeof by_id);
    by_id.prog_id = (__u32)strtoul(argv[i], NULL, 10);
    const int fd = (int)bpf(BPF_PROG_GET_FD_BY_ID, &by_id);
    if (fd < 0) continue;
    struct bpf_prog_info info;
    memset(&info, 0, sizeof info);
    union bpf_attr get;
    memset(&get, 0, sizeof get);
    get.info.bpf_fd = (__u32)fd;
    get.info.info_len = sizeof info;
    get.info.info = (__u64)(unsigned long)&info;
    if (bpf(BPF_OBJ_GET_INFO_BY_FD, &get) == 0) {
      printf("%s\"%u\":{\"runs\":%llu,\"ns\":%llu}", separator, by_id.prog_id, (unsigned long long)info.run_cnt,
             (unsigned long long)info.run_time_ns);
      separator = ",";
    }
    close(fd);
  }
  printf("}\n");
  return 0;
}
