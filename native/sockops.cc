#include "sockops.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#if defined(__linux__)
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/btf.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#endif

namespace toa {

#if defined(__linux__)
namespace {

#include "bpf/conn_sockops.inc"

long Bpf(int command, bpf_attr* attr) { return syscall(__NR_bpf, command, attr, sizeof *attr); }

// The per-connection lookup passes only the fields it uses (map_fd, key, value, flags): the
// kernel copies and checks that much of the attribute union, not all of it.
constexpr unsigned kElemAttrSize = offsetof(bpf_attr, flags) + sizeof(bpf_attr::flags);
long BpfElem(int command, bpf_attr* attr) { return syscall(__NR_bpf, command, attr, kElemAttrSize); }

// Socket storage maps need BTF for their key and value: an int key, and the value as an array of
// bytes of the right size. Three types, two names.
int LoadBtf() {
  struct {
    btf_header header;
    uint32_t types[3 + 1 + 3 + 1 + 3 + 3];
    char strings[8];
  } blob{};
  static_assert(sizeof blob.types == 14 * 4, "three types");
  uint32_t* t = blob.types;
  // [1] int: 4 bytes, signed, 32 bits.
  *t++ = 1;  // name "int"
  *t++ = (BTF_KIND_INT << 24);
  *t++ = 4;
  *t++ = (BTF_INT_SIGNED << 24) | 32;
  // [2] u8: 1 byte, 8 bits.
  *t++ = 5;  // name "u8"
  *t++ = (BTF_KIND_INT << 24);
  *t++ = 1;
  *t++ = 8;
  // [3] u8[sizeof(toa_sockops_conn)], indexed by int.
  *t++ = 0;
  *t++ = (BTF_KIND_ARRAY << 24);
  *t++ = 0;
  *t++ = 2;  // element type
  *t++ = 1;  // index type
  *t++ = sizeof(toa_sockops_conn);
  std::memcpy(blob.strings, "\0int\0u8", 8);
  blob.header.magic = BTF_MAGIC;
  blob.header.version = BTF_VERSION;
  blob.header.hdr_len = sizeof blob.header;
  blob.header.type_off = 0;
  blob.header.type_len = sizeof blob.types;
  blob.header.str_off = sizeof blob.types;
  blob.header.str_len = sizeof blob.strings;
  bpf_attr attr{};
  attr.btf = reinterpret_cast<uintptr_t>(&blob);
  attr.btf_size = sizeof blob;
  return static_cast<int>(Bpf(BPF_BTF_LOAD, &attr));
}

// The maps, in the loader's order (scripts/build-bpf.js): how each is made here, and what a map of
// another process's program must be for this process to share it (Adopt).
enum MapIndex { kConns, kPorts, kSyns, kTrust, kRecent, kMaps };
struct MapSpec {
  const char* name;
  uint32_t type;
  uint32_t key_size;
  uint32_t value_size;
  uint32_t max_entries;
  uint32_t flags;
};
constexpr MapSpec kMapSpecs[kMaps] = {
    {"toa_conns", BPF_MAP_TYPE_SK_STORAGE, sizeof(int), sizeof(toa_sockops_conn), 0, BPF_F_NO_PREALLOC},
    {"toa_ports", BPF_MAP_TYPE_ARRAY, sizeof(uint32_t), sizeof(uint32_t), TOA_SOCKOPS_PORTS, 0},
    {"toa_syns", BPF_MAP_TYPE_LRU_HASH, sizeof(toa_sockops_ends), sizeof(toa_sockops_syn), TOA_SOCKOPS_COOKIE_SYNS, 0},
    {"toa_trust", BPF_MAP_TYPE_LPM_TRIE, sizeof(toa_sockops_trust_key), sizeof(toa_sockops_trust_value),
     TOA_SOCKOPS_TRUST_ENTRIES, BPF_F_NO_PREALLOC},
    {"toa_recent", BPF_MAP_TYPE_ARRAY, sizeof(uint32_t), sizeof(toa_sockops_slot), TOA_SOCKOPS_SLOTS, BPF_F_MMAPABLE},
};

// `btf` describes the socket storage's key and value (LoadBtf), which the kernel requires.
int CreateMap(const MapSpec& m, int btf) {
  bpf_attr attr{};
  attr.map_type = m.type;
  attr.key_size = m.key_size;
  attr.value_size = m.value_size;
  attr.max_entries = m.max_entries;
  attr.map_flags = m.flags;
  if (m.type == BPF_MAP_TYPE_SK_STORAGE) {
    attr.btf_fd = static_cast<uint32_t>(btf);
    attr.btf_key_type_id = 1;
    attr.btf_value_type_id = 3;
  }
  std::strncpy(attr.map_name, m.name, sizeof attr.map_name - 1);
  return static_cast<int>(Bpf(BPF_MAP_CREATE, &attr));
}

// An mmapable array's elements lie one after the other, each rounded up to 8 bytes.
constexpr size_t kSlotStride = (sizeof(toa_sockops_slot) + 7) & ~static_cast<size_t>(7);
constexpr size_t kRecentBytes = kSlotStride * TOA_SOCKOPS_SLOTS;

int LoadProgram(const int maps[kMaps], std::string* log) {
  std::vector<bpf_insn> code(sizeof kConnSockopsCode / sizeof(bpf_insn));
  std::memcpy(code.data(), kConnSockopsCode, sizeof kConnSockopsCode);
  for (const auto& m : kConnSockopsMaps) {
    code[m.insn].src_reg = BPF_PSEUDO_MAP_FD;
    code[m.insn].imm = maps[m.map];
  }
  static const char kLicense[] = "GPL";
  bpf_attr attr{};
  attr.prog_type = BPF_PROG_TYPE_SOCK_OPS;
  attr.insns = reinterpret_cast<uintptr_t>(code.data());
  attr.insn_cnt = static_cast<uint32_t>(code.size());
  attr.license = reinterpret_cast<uintptr_t>(kLicense);
  std::memcpy(attr.prog_name, "toa_conn", 9);
  int fd = static_cast<int>(Bpf(BPF_PROG_LOAD, &attr));
  if (fd >= 0 || log == nullptr) return fd;
  // Again with the verifier's log, only to say why.
  const int err = errno;
  std::vector<char> buffer(1 << 16);
  attr.log_level = 1;
  attr.log_buf = reinterpret_cast<uintptr_t>(buffer.data());
  attr.log_size = static_cast<uint32_t>(buffer.size());
  Bpf(BPF_PROG_LOAD, &attr);
  buffer.back() = '\0';
  *log = buffer.data();
  errno = err;
  return -1;
}

// `ip netns exec` gives its command a mount namespace with a fresh /sys, without the cgroup2
// mount. Mounted for a moment on a directory of our own, detached once the directory is open: the
// descriptor is all the attach needs. Needs CAP_SYS_ADMIN, which loading the program needs too.
int OpenUnmountedCgroup(const std::string& cgroup) {
  char dir[] = "/tmp/node-toa-cgroup-XXXXXX";
  if (mkdtemp(dir) == nullptr) return -1;
  int fd = -1;
  int err = ENOENT;
  if (::mount("none", dir, "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) == 0) {
    fd = open((std::string(dir) + cgroup).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    err = errno;
    umount2(dir, MNT_DETACH);
  } else {
    err = errno;
  }
  rmdir(dir);
  if (fd < 0) errno = err;
  return fd;
}

// The cgroup v2 directory of this process: its path in /proc/self/cgroup ("0::/path") under
// where cgroup2 is mounted (/proc/self/mountinfo).
int OpenOwnCgroup() {
  char buffer[8192];
  std::string cgroup;
  int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buffer, sizeof buffer - 1);
  close(fd);
  if (n <= 0) return -1;
  buffer[n] = '\0';
  for (char* line = buffer; line != nullptr && *line != '\0';) {
    char* next = std::strchr(line, '\n');
    if (next != nullptr) *next++ = '\0';
    if (std::strncmp(line, "0::", 3) == 0) cgroup = line + 3;
    line = next;
  }
  if (cgroup.empty()) {
    errno = ENOENT;
    return -1;
  }
  std::string mount;
  fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  std::string info;
  while ((n = read(fd, buffer, sizeof buffer)) > 0) info.append(buffer, static_cast<size_t>(n));
  close(fd);
  // "id parent major:minor root mountpoint options ... - cgroup2 source options"
  size_t start = 0;
  while (start < info.size()) {
    size_t end = info.find('\n', start);
    if (end == std::string::npos) end = info.size();
    const std::string line = info.substr(start, end - start);
    start = end + 1;
    const size_t dash = line.find(" - cgroup2 ");
    if (dash == std::string::npos) continue;
    size_t field = 0, pos = 0;
    std::string root, point;
    while (field < 5 && pos < dash) {
      size_t space = line.find(' ', pos);
      if (space == std::string::npos || space > dash) space = dash;
      if (field == 3) root = line.substr(pos, space - pos);
      if (field == 4) point = line.substr(pos, space - pos);
      pos = space + 1;
      field++;
    }
    // The mount shows the hierarchy from `root` down (a container's cgroup namespace shows "/").
    if (cgroup.compare(0, root.size(), root) == 0) {
      mount = point + (root == "/" ? cgroup : cgroup.substr(root.size()));
      break;
    }
  }
  if (!mount.empty()) return open(mount.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  return OpenUnmountedCgroup(cgroup);
}

int AttachToCgroup(int program, int cgroup) {
  bpf_attr attr{};
  attr.link_create.prog_fd = static_cast<uint32_t>(program);
  attr.link_create.target_fd = static_cast<uint32_t>(cgroup);
  attr.link_create.attach_type = BPF_CGROUP_SOCK_OPS;
  return static_cast<int>(Bpf(BPF_LINK_CREATE, &attr));
}

// A descriptor of the program, map or link with this id (the ids share one field of bpf_attr).
int FdById(int command, uint32_t id) {
  bpf_attr attr{};
  attr.prog_id = id;
  return static_cast<int>(Bpf(command, &attr));
}

template <typename Info>
bool ObjectInfo(int fd, Info* info) {
  bpf_attr attr{};
  attr.info.bpf_fd = static_cast<uint32_t>(fd);
  attr.info.info_len = sizeof *info;
  attr.info.info = reinterpret_cast<uintptr_t>(info);
  return Bpf(BPF_OBJ_GET_INFO_BY_FD, &attr) == 0;
}

// The processes of a cgroup share one program: while they find or attach it, and while they count
// their watchers into its maps, they take turns. A lock on the cgroup's directory, which the
// kernel lets go of when a process dies holding it. Each holds it for a few system calls; one that
// was stopped holding it (SIGSTOP, a frozen cgroup) must not hang the others' event loops, so after
// `patience_ms` they go on without it (a count may then be lost: it costs copies or a client,
// never a wrong answer).
class CgroupLock {
 public:
  explicit CgroupLock(int fd, int patience_ms = 2000) : fd_(-1) {
    if (fd < 0) return;
    for (int tries = 0; tries < patience_ms; tries++) {
      if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
        fd_ = fd;
        return;
      }
      if (errno != EWOULDBLOCK && errno != EINTR) return;
      const timespec ms{0, 1000 * 1000};
      nanosleep(&ms, nullptr);
    }
  }
  ~CgroupLock() {
    if (fd_ >= 0) flock(fd_, LOCK_UN);
  }
  CgroupLock(const CgroupLock&) = delete;
  CgroupLock& operator=(const CgroupLock&) = delete;

 private:
  int fd_;
};

struct State {
  std::mutex mutex;
  int maps[kMaps] = {-1, -1, -1, -1, -1};
  // What lookups read without the mutex: the socket storage map, the trust map and the mapped slot
  // table. They change only when the process adopts another's program, and it does so only while
  // it watches no port, so no lookup is reading them.
  std::atomic<int> conns{-1};
  std::atomic<int> trust{-1};
  std::atomic<const uint8_t*> slots{nullptr};  // toa_recent, mapped read-only
  int program = -1;
  uint32_t program_id = 0;
  uint8_t tag[BPF_TAG_SIZE] = {};  // of the program's instructions: the same tag, the same program
  int cgroup = -1;
  uint64_t cgroup_id = 0;  // the cgroup directory's inode number
  int link = -1;  // while a port is watched, or one is about to be (holds)
  uint32_t watched = 0;  // ports with watchers
  uint32_t holds = 0;  // SockopsLoad(hold) calls no SockopsWatch has taken up yet
  int error = 0;  // a load that failed is not tried again
  const char* failed_call = nullptr;
  std::string log;
  uint32_t watchers[65536] = {};
  // Per watcher, its port and the trust entries it holds (released with it).
  std::vector<std::pair<uint16_t, std::vector<toa_sockops_trust_key>>> trusted;
};

State& state() {
  static State* s = new State();  // never destroyed: worker threads may still look up at exit
  return *s;
}

void Unmap(const uint8_t* slots) {
  if (slots != nullptr) munmap(const_cast<uint8_t*>(slots), kRecentBytes);
}

// Closes what Load made; the BTF is only needed while it runs.
void CloseAll(State& s, int btf) {
  Unmap(s.slots.exchange(nullptr));
  s.conns = -1;
  s.trust = -1;
  for (int& fd : s.maps) {
    if (fd >= 0) close(fd);
    fd = -1;
  }
  for (int* fd : {&btf, &s.program, &s.cgroup, &s.link}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
}

int Load(State& s) {
  int btf = -1;
  auto fail = [&](const char* call) {
    s.error = errno != 0 ? errno : EINVAL;
    s.failed_call = call;
    CloseAll(s, btf);
    return s.error;
  };
  btf = LoadBtf();
  if (btf < 0) return fail("bpf(BPF_BTF_LOAD)");
  for (int i = 0; i < kMaps; i++) {
    s.maps[i] = CreateMap(kMapSpecs[i], btf);
    if (s.maps[i] < 0) return fail("bpf(BPF_MAP_CREATE)");
  }
  void* slots = mmap(nullptr, kRecentBytes, PROT_READ, MAP_SHARED, s.maps[kRecent], 0);
  if (slots == MAP_FAILED) return fail("mmap(toa_recent)");
  s.slots = static_cast<const uint8_t*>(slots);
  s.conns = s.maps[kConns];
  s.trust = s.maps[kTrust];
  s.program = LoadProgram(s.maps, &s.log);
  if (s.program < 0) return fail("bpf(BPF_PROG_LOAD)");
  s.cgroup = OpenOwnCgroup();
  if (s.cgroup < 0) return fail("open(cgroup2)");
  // What another process's program must match to be shared (Attach). Without them this process
  // shares none: it attaches its own, as it would alone.
  bpf_prog_info info{};
  struct stat dir {};
  if (ObjectInfo(s.program, &info) && fstat(s.cgroup, &dir) == 0) {
    s.program_id = info.id;
    std::memcpy(s.tag, info.tag, sizeof s.tag);
    s.cgroup_id = dir.st_ino;
  }
  {
    // Attached once, to learn now whether it can be, and detached: it runs for every connection
    // of the cgroup while attached, so it is attached only while this process watches a port
    // (Attach). A cluster's primary, or any process the preload runs in that taps no server,
    // costs the cgroup's connections nothing. Locked: no other process may take it up meanwhile.
    CgroupLock lock(s.cgroup);
    const int trial = AttachToCgroup(s.program, s.cgroup);
    if (trial < 0) return fail("bpf(BPF_LINK_CREATE)");
    close(trial);
  }
  // The maps hold their BTF.
  close(btf);
  return 0;
}

// Of a map of another process's program: which of ours it is, if it is made as ours is; else -1.
int MapOf(const bpf_map_info& m) {
  for (int i = 0; i < kMaps; i++) {
    const MapSpec& spec = kMapSpecs[i];
    if (std::strncmp(m.name, spec.name, sizeof m.name) == 0 && m.type == spec.type && m.key_size == spec.key_size &&
        m.value_size == spec.value_size && m.max_entries == spec.max_entries && m.map_flags == spec.flags) {
      return i;
    }
  }
  return -1;
}

// The link through which another process attached this same program (the same tag) to this
// cgroup, if there is one: its descriptor, and the program's id in *program_id. Keeping the
// descriptor keeps the program attached after that process is gone.
int FindSharedLink(const State& s, uint32_t* program_id) {
  if (s.cgroup_id == 0) return -1;
  uint32_t id = 0;
  // Bounded: the system's links, in id order.
  for (int n = 0; n < 65536; n++) {
    bpf_attr next{};
    next.start_id = id;
    if (Bpf(BPF_LINK_GET_NEXT_ID, &next) != 0) return -1;
    id = next.next_id;
    const int link = FdById(BPF_LINK_GET_FD_BY_ID, id);
    if (link < 0) continue;
    bpf_link_info info{};
    if (ObjectInfo(link, &info) && info.type == BPF_LINK_TYPE_CGROUP && info.cgroup.cgroup_id == s.cgroup_id &&
        info.cgroup.attach_type == BPF_CGROUP_SOCK_OPS) {
      const int program = FdById(BPF_PROG_GET_FD_BY_ID, info.prog_id);
      bpf_prog_info p{};
      const bool same = program >= 0 && ObjectInfo(program, &p) && p.type == BPF_PROG_TYPE_SOCK_OPS &&
                        std::memcmp(p.tag, s.tag, sizeof s.tag) == 0;
      if (program >= 0) close(program);
      if (same) {
        *program_id = info.prog_id;
        return link;
      }
    }
    close(link);
  }
  return -1;
}

// Takes up the program `id` and its maps in place of this process's own, which go. Only while no
// port is watched (Attach): no lookup is reading the old maps.
bool Adopt(State& s, uint32_t id) {
  const int program = FdById(BPF_PROG_GET_FD_BY_ID, id);
  if (program < 0) return false;
  uint32_t ids[kMaps + 1] = {};
  bpf_prog_info info{};
  info.nr_map_ids = kMaps + 1;
  info.map_ids = reinterpret_cast<uintptr_t>(ids);
  int maps[kMaps] = {-1, -1, -1, -1, -1};
  bool ok = ObjectInfo(program, &info) && info.nr_map_ids == kMaps;
  for (int i = 0; ok && i < kMaps; i++) {
    const int fd = FdById(BPF_MAP_GET_FD_BY_ID, ids[i]);
    bpf_map_info m{};
    const int which = fd >= 0 && ObjectInfo(fd, &m) ? MapOf(m) : -1;
    ok = which >= 0 && maps[which] < 0;
    if (ok) maps[which] = fd;
    else if (fd >= 0) close(fd);
  }
  void* slots = ok ? mmap(nullptr, kRecentBytes, PROT_READ, MAP_SHARED, maps[kRecent], 0) : MAP_FAILED;
  if (slots == MAP_FAILED) {
    for (int fd : maps) {
      if (fd >= 0) close(fd);
    }
    close(program);
    return false;
  }
  Unmap(s.slots.exchange(static_cast<const uint8_t*>(slots)));
  s.conns = maps[kConns];
  s.trust = maps[kTrust];
  for (int i = 0; i < kMaps; i++) {
    close(s.maps[i]);
    s.maps[i] = maps[i];
  }
  close(s.program);
  s.program = program;
  s.program_id = id;
  return true;
}

// At the first watched port, with the cgroup locked. The tap watches a server's port once it is
// bound and before it listens, so the program sees the listen() and flags the listener (its cookie
// SYN-ACKs). Where another process of the cgroup attached the same program, this one shares it: a
// program per process would each copy every connection of the cgroup.
int Attach(State& s, const char** failed_call) {
  if (s.link >= 0) return 0;
  uint32_t id = 0;
  int link = FindSharedLink(s, &id);
  if (link >= 0 && id != s.program_id && !Adopt(s, id)) {
    close(link);
    link = -1;
  }
  if (link < 0) link = AttachToCgroup(s.program, s.cgroup);
  if (link < 0) {
    *failed_call = "bpf(BPF_LINK_CREATE)";
    return errno;
  }
  s.link = link;
  return 0;
}

// Once no port is watched and none is about to be (the last tapped server closed, or the first
// watch failed). The program stays attached while another process holds the link.
void DetachIfIdle(State& s) {
  if (s.watched != 0 || s.holds != 0 || s.link < 0) return;
  close(s.link);
  s.link = -1;
}

// Counts this process in or out of the watchers of `port` the program reads (cgroup locked).
int CountWatcher(State& s, uint16_t port, bool in) {
  uint32_t key = port;
  uint32_t count = 0;
  bpf_attr attr{};
  attr.map_fd = static_cast<uint32_t>(s.maps[kPorts]);
  attr.key = reinterpret_cast<uintptr_t>(&key);
  attr.value = reinterpret_cast<uintptr_t>(&count);
  if (Bpf(BPF_MAP_LOOKUP_ELEM, &attr) != 0) return errno;
  count = in ? count + 1 : count > 0 ? count - 1 : 0;
  attr.flags = BPF_ANY;
  return Bpf(BPF_MAP_UPDATE_ELEM, &attr) == 0 ? 0 : errno;
}

}  // namespace

namespace {
int LoadLocked(State& s, const char** failed_call, std::string* log) {
  if (s.program < 0 && s.error == 0) Load(s);
  if (s.error != 0) {
    *failed_call = s.failed_call;
    if (log != nullptr) *log = s.log;
  }
  return s.error;
}
// A trie key of `port` and the first `bits` bits of an address (filled in by the caller): the
// program's lookups and the loader's entries are made alike.
toa_sockops_trust_key TrustKey(uint16_t port, uint32_t bits) {
  toa_sockops_trust_key k{};
  k.prefixlen = 16 + bits;
  k.port[0] = static_cast<uint8_t>(port >> 8);
  k.port[1] = static_cast<uint8_t>(port);
  return k;
}

// The trie keys of `sources` for `port`: 16 bits of port, then the range's bits of an IPv6
// address (an IPv4 range as ::ffff:a.b.c.d/96+bits). No sources: the port alone, every sender.
std::vector<toa_sockops_trust_key> TrustKeys(uint16_t port, const FilterSpec& trust) {
  std::vector<toa_sockops_trust_key> keys;
  if (!trust.check_sources) {
    keys.push_back(TrustKey(port, 0));
    return keys;
  }
  for (const SourceRange& r : trust.sources) {
    if (r.family == 4) {
      toa_sockops_trust_key k = TrustKey(port, 96 + (r.prefix > 32 ? 32 : r.prefix));
      k.address[10] = 0xff;
      k.address[11] = 0xff;
      std::memcpy(k.address + 12, r.bytes, 4);
      keys.push_back(k);
    } else if (r.family == 6) {
      toa_sockops_trust_key k = TrustKey(port, r.prefix > 128 ? 128 : r.prefix);
      std::memcpy(k.address, r.bytes, 16);
      keys.push_back(k);
    }
  }
  return keys;
}

// A trust entry, counted: every watcher, of any process sharing the program, holds the entries of
// its ranges, and an entry goes with its last holder (cgroup locked).
//
// The entry of exactly key `k`, in *v, if there is one: the trie's lookup matches the longest
// prefix, so the entry found is this key's only if it has the key's prefixlen.
bool TrustEntry(State& s, const toa_sockops_trust_key& k, toa_sockops_trust_value* v) {
  bpf_attr attr{};
  attr.map_fd = static_cast<uint32_t>(s.maps[kTrust]);
  attr.key = reinterpret_cast<uintptr_t>(&k);
  attr.value = reinterpret_cast<uintptr_t>(v);
  return Bpf(BPF_MAP_LOOKUP_ELEM, &attr) == 0 && v->prefixlen == k.prefixlen;
}

// Writes the entry of `k` with `holders`, or deletes it at 0.
int SetTrust(State& s, const toa_sockops_trust_key& k, uint32_t holders) {
  toa_sockops_trust_value v{holders, k.prefixlen};
  bpf_attr attr{};
  attr.map_fd = static_cast<uint32_t>(s.maps[kTrust]);
  attr.key = reinterpret_cast<uintptr_t>(&k);
  if (holders == 0) return Bpf(BPF_MAP_DELETE_ELEM, &attr) == 0 ? 0 : errno;
  attr.value = reinterpret_cast<uintptr_t>(&v);
  attr.flags = BPF_ANY;
  return Bpf(BPF_MAP_UPDATE_ELEM, &attr) == 0 ? 0 : errno;
}

int HoldTrust(State& s, const toa_sockops_trust_key& k) {
  toa_sockops_trust_value v{};
  return SetTrust(s, k, TrustEntry(s, k, &v) ? v.holders + 1 : 1);
}

void ReleaseTrust(State& s, const toa_sockops_trust_key& k) {
  toa_sockops_trust_value v{};
  if (TrustEntry(s, k, &v)) SetTrust(s, k, v.holders > 0 ? v.holders - 1 : 0);
}

// Takes one watcher of `port` out of the shared maps: the trust entries it held, and the port's
// count when it was the port's last (state and cgroup locked).
void UnwatchLocked(State& s, uint16_t port) {
  for (size_t i = 0; i < s.trusted.size(); i++) {
    if (s.trusted[i].first != port) continue;
    for (const auto& k : s.trusted[i].second) ReleaseTrust(s, k);
    s.trusted.erase(s.trusted.begin() + static_cast<std::ptrdiff_t>(i));
    break;
  }
  if (--s.watchers[port] != 0) return;
  CountWatcher(s, port, false);
  s.watched--;
}

// At exit (process.exit() with servers open, or the event loop's end): the counts this process
// put into the shared maps go with it, so that a port nobody watches any more stops costing the
// program's copies. Not after SIGKILL. Skipped when another thread holds the state meanwhile; the
// exit waits for the cgroup's lock at most 100 ms.
void ReleaseAtExit() {
  State& s = state();
  if (!s.mutex.try_lock()) return;
  {
    CgroupLock shared(s.cgroup, 100);
    // Every watcher has its entry in `trusted` (an empty one when it trusts nobody).
    while (!s.trusted.empty()) UnwatchLocked(s, s.trusted.back().first);
  }
  s.mutex.unlock();
}

}  // namespace

int SockopsLoad(const char** failed_call, std::string* log, bool hold) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (LoadLocked(s, failed_call, log) != 0 || !hold) return s.error;
  CgroupLock shared(s.cgroup);
  if (const int err = Attach(s, failed_call); err != 0) return err;
  s.holds++;
  return 0;
}

int SockopsWatch(uint16_t port, const FilterSpec& trust, const char** failed_call, std::string* log) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (LoadLocked(s, failed_call, log) != 0) return s.error;
  CgroupLock shared(s.cgroup);
  if (const int err = Attach(s, failed_call); err != 0) return err;
  if (s.holds > 0) s.holds--;
  std::vector<toa_sockops_trust_key> keys = TrustKeys(port, trust);
  auto undo = [&](size_t held, int err) {
    for (size_t i = 0; i < held; i++) ReleaseTrust(s, keys[i]);
    DetachIfIdle(s);
    *failed_call = "bpf(BPF_MAP_UPDATE_ELEM)";
    return err;
  };
  for (size_t i = 0; i < keys.size(); i++) {
    if (const int err = HoldTrust(s, keys[i]); err != 0) return undo(i, err);
  }
  if (s.watchers[port] == 0) {
    if (const int err = CountWatcher(s, port, true); err != 0) return undo(keys.size(), err);
    s.watched++;
  }
  s.watchers[port]++;
  s.trusted.emplace_back(port, std::move(keys));
  static std::once_flag at_exit;
  std::call_once(at_exit, [] { std::atexit(ReleaseAtExit); });
  return 0;
}

void SockopsUnwatch(uint16_t port) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.watchers[port] == 0) return;
  CgroupLock shared(s.cgroup);
  UnwatchLocked(s, port);
  DetachIfIdle(s);
}

bool SockopsRecent(const uint32_t remote[4], const uint32_t local[4], uint32_t ports, toa_sockops_slot* out) {
  const uint8_t* slots = state().slots.load(std::memory_order_acquire);
  if (slots == nullptr) return false;
  const auto* slot = reinterpret_cast<const toa_sockops_slot*>(
      slots + kSlotStride * toa_sockops_slot_of(reinterpret_cast<const __u32*>(remote), reinterpret_cast<const __u32*>(local), ports));
  const uint32_t before = __atomic_load_n(&slot->gen, __ATOMIC_ACQUIRE);
  if ((before & 1) != 0) return false;
  // Only the bytes a reader uses: the slot's line was written on the CPU that took the packet, so
  // every line read is a miss, and a connection that sent no data has none in data[].
  std::memcpy(out, slot, offsetof(toa_sockops_slot, ack));
  if (out->ports != ports || std::memcmp(out->remote, remote, 16) != 0 || std::memcmp(out->local, local, 16) != 0) return false;
  // Lengths read while the program may be writing: bounded here, and the generation check below
  // throws away whatever such a read saw.
  out->ack_len = std::min<uint8_t>(out->ack_len, TOA_SOCKOPS_TCP_MAX);
  out->data_len = std::min<uint8_t>(out->data_len, TOA_SOCKOPS_TCP_MAX);
  std::memcpy(out->ack, slot->ack, out->ack_len);
  std::memcpy(out->data, slot->data, out->data_len);
  __atomic_thread_fence(__ATOMIC_ACQUIRE);
  return __atomic_load_n(&slot->gen, __ATOMIC_RELAXED) == before;
}

int SockopsLookup(int fd, toa_sockops_conn* out) {
  // Read without the lock: set once by the first SockopsWatch, which happens before any lookup.
  const int conns = state().conns.load(std::memory_order_relaxed);
  if (conns < 0) return ENOENT;
  bpf_attr attr{};
  attr.map_fd = static_cast<uint32_t>(conns);
  attr.key = reinterpret_cast<uintptr_t>(&fd);
  attr.value = reinterpret_cast<uintptr_t>(out);
  return BpfElem(BPF_MAP_LOOKUP_ELEM, &attr) == 0 ? 0 : errno;
}

void SockopsAwaitProgram(int fd) {
  // A call that takes the socket's lock returns only once the softirq that holds it is done.
  tcp_info info;
  socklen_t size = sizeof info;
  getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &size);
}

bool SockopsTrusted(const uint32_t remote[4], uint16_t port) {
  // Read without the lock, as `conns` is.
  const int trust = state().trust.load(std::memory_order_relaxed);
  if (trust < 0) return false;
  // The program's key: the port, then the sender's whole address (the trie finds its range).
  toa_sockops_trust_key k = TrustKey(port, 128);
  std::memcpy(k.address, remote, 16);
  toa_sockops_trust_value v{};
  bpf_attr attr{};
  attr.map_fd = static_cast<uint32_t>(trust);
  attr.key = reinterpret_cast<uintptr_t>(&k);
  attr.value = reinterpret_cast<uintptr_t>(&v);
  return BpfElem(BPF_MAP_LOOKUP_ELEM, &attr) == 0;
}

#else  // !__linux__
int SockopsLoad(const char** failed_call, std::string*, bool) {
  *failed_call = "bpf";
  return ENOTSUP;
}
int SockopsWatch(uint16_t, const FilterSpec&, const char** failed_call, std::string*) {
  *failed_call = "bpf";
  return ENOTSUP;
}
void SockopsUnwatch(uint16_t) {}
bool SockopsRecent(const uint32_t*, const uint32_t*, uint32_t, toa_sockops_slot*) { return false; }
int SockopsLookup(int, toa_sockops_conn*) { return ENOTSUP; }
void SockopsAwaitProgram(int) {}
bool SockopsTrusted(const uint32_t*, uint16_t) { return false; }
#endif

}  // namespace toa
