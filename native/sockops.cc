#include "sockops.h"

#include <algorithm>
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
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
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

int CreateConnMap(int btf) {
  bpf_attr attr{};
  attr.map_type = BPF_MAP_TYPE_SK_STORAGE;
  attr.key_size = sizeof(int);
  attr.value_size = sizeof(toa_sockops_conn);
  attr.max_entries = 0;
  attr.map_flags = BPF_F_NO_PREALLOC;
  attr.btf_fd = static_cast<uint32_t>(btf);
  attr.btf_key_type_id = 1;
  attr.btf_value_type_id = 3;
  std::memcpy(attr.map_name, "toa_conns", 10);
  return static_cast<int>(Bpf(BPF_MAP_CREATE, &attr));
}

int CreatePortMap() {
  bpf_attr attr{};
  attr.map_type = BPF_MAP_TYPE_ARRAY;
  attr.key_size = sizeof(uint32_t);
  attr.value_size = TOA_SOCKOPS_PORT_BYTES;
  attr.max_entries = 1;
  std::memcpy(attr.map_name, "toa_ports", 10);
  return static_cast<int>(Bpf(BPF_MAP_CREATE, &attr));
}

int CreateCookieMap() {
  bpf_attr attr{};
  attr.map_type = BPF_MAP_TYPE_LRU_HASH;
  attr.key_size = sizeof(toa_sockops_ends);
  attr.value_size = sizeof(toa_sockops_syn);
  attr.max_entries = TOA_SOCKOPS_COOKIE_SYNS;
  std::memcpy(attr.map_name, "toa_syns", 9);
  return static_cast<int>(Bpf(BPF_MAP_CREATE, &attr));
}

int CreateTrustMap() {
  bpf_attr attr{};
  attr.map_type = BPF_MAP_TYPE_LPM_TRIE;
  attr.key_size = sizeof(toa_sockops_trust_key);
  attr.value_size = 1;
  attr.max_entries = TOA_SOCKOPS_TRUST_ENTRIES;
  attr.map_flags = BPF_F_NO_PREALLOC;
  std::memcpy(attr.map_name, "toa_trust", 10);
  return static_cast<int>(Bpf(BPF_MAP_CREATE, &attr));
}

int CreateRecentMap() {
  bpf_attr attr{};
  attr.map_type = BPF_MAP_TYPE_ARRAY;
  attr.key_size = sizeof(uint32_t);
  attr.value_size = sizeof(toa_sockops_slot);
  attr.max_entries = TOA_SOCKOPS_SLOTS;
  attr.map_flags = BPF_F_MMAPABLE;
  std::memcpy(attr.map_name, "toa_recent", 11);
  return static_cast<int>(Bpf(BPF_MAP_CREATE, &attr));
}

// An mmapable array's elements lie one after the other, each rounded up to 8 bytes.
constexpr size_t kSlotStride = (sizeof(toa_sockops_slot) + 7) & ~static_cast<size_t>(7);
constexpr size_t kRecentBytes = kSlotStride * TOA_SOCKOPS_SLOTS;

constexpr int kMaps = 5;

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

struct State {
  std::mutex mutex;
  int conns = -1;
  int ports = -1;
  int syns = -1;
  int trust = -1;
  int recent = -1;
  const uint8_t* slots = nullptr;  // toa_recent, mapped read-only
  int program = -1;
  int cgroup = -1;
  int link = -1;  // while a port is watched, or one is about to be (holds)
  uint32_t watched = 0;  // ports with watchers
  uint32_t holds = 0;  // SockopsLoad(hold) calls no SockopsWatch has taken up yet
  int error = 0;  // a load that failed is not tried again
  const char* failed_call = nullptr;
  std::string log;
  uint8_t bits[TOA_SOCKOPS_PORT_BYTES] = {};
  uint32_t watchers[65536] = {};
  // Per port, the trust entries each watcher added (a watcher's are removed with it).
  std::vector<std::pair<uint16_t, std::vector<toa_sockops_trust_key>>> trusted;
};

State& state() {
  static State* s = new State();  // never destroyed: worker threads may still look up at exit
  return *s;
}

// Closes what Load made; the BTF is only needed while it runs.
void CloseAll(State& s, int btf) {
  if (s.slots != nullptr) munmap(const_cast<uint8_t*>(s.slots), kRecentBytes);
  s.slots = nullptr;
  for (int fd : {btf, s.conns, s.ports, s.syns, s.trust, s.recent, s.program, s.cgroup, s.link}) {
    if (fd >= 0) close(fd);
  }
  s.conns = s.ports = s.syns = s.trust = s.recent = s.program = s.cgroup = s.link = -1;
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
  s.conns = CreateConnMap(btf);
  if (s.conns < 0) return fail("bpf(BPF_MAP_CREATE)");
  s.ports = CreatePortMap();
  if (s.ports < 0) return fail("bpf(BPF_MAP_CREATE)");
  s.syns = CreateCookieMap();
  if (s.syns < 0) return fail("bpf(BPF_MAP_CREATE)");
  s.trust = CreateTrustMap();
  if (s.trust < 0) return fail("bpf(BPF_MAP_CREATE)");
  s.recent = CreateRecentMap();
  if (s.recent < 0) return fail("bpf(BPF_MAP_CREATE)");
  void* slots = mmap(nullptr, kRecentBytes, PROT_READ, MAP_SHARED, s.recent, 0);
  if (slots == MAP_FAILED) return fail("mmap(toa_recent)");
  s.slots = static_cast<const uint8_t*>(slots);
  const int maps[kMaps] = {s.conns, s.ports, s.syns, s.trust, s.recent};
  s.program = LoadProgram(maps, &s.log);
  if (s.program < 0) return fail("bpf(BPF_PROG_LOAD)");
  s.cgroup = OpenOwnCgroup();
  if (s.cgroup < 0) return fail("open(cgroup2)");
  // Attached once, to learn now whether it can be, and detached: it runs for every connection of
  // the cgroup while attached, so it is attached only while this process watches a port (Attach).
  // A cluster's primary, or any process the preload runs in that taps no server, costs the
  // cgroup's connections nothing.
  const int trial = AttachToCgroup(s.program, s.cgroup);
  if (trial < 0) return fail("bpf(BPF_LINK_CREATE)");
  close(trial);
  // The maps hold their BTF.
  close(btf);
  return 0;
}

// At the first watched port. The tap watches a server's port once it is bound and before it
// listens, so the program sees the listen() and flags the listener (its cookie SYN-ACKs).
int Attach(State& s, const char** failed_call) {
  if (s.link >= 0) return 0;
  s.link = AttachToCgroup(s.program, s.cgroup);
  if (s.link >= 0) return 0;
  *failed_call = "bpf(BPF_LINK_CREATE)";
  return errno;
}

// Once no port is watched and none is about to be (the last tapped server closed, or the first
// watch failed).
void DetachIfIdle(State& s) {
  if (s.watched != 0 || s.holds != 0 || s.link < 0) return;
  close(s.link);
  s.link = -1;
}

int WritePorts(State& s) {
  uint32_t zero = 0;
  bpf_attr attr{};
  attr.map_fd = static_cast<uint32_t>(s.ports);
  attr.key = reinterpret_cast<uintptr_t>(&zero);
  attr.value = reinterpret_cast<uintptr_t>(s.bits);
  attr.flags = BPF_ANY;
  return Bpf(BPF_MAP_UPDATE_ELEM, &attr) == 0 ? 0 : errno;
}

}  // namespace

namespace {
int LoadLocked(State& s, const char** failed_call, std::string* log) {
  if (s.conns < 0 && s.error == 0) Load(s);
  if (s.error != 0) {
    *failed_call = s.failed_call;
    if (log != nullptr) *log = s.log;
  }
  return s.error;
}
// The trie keys of `sources` for `port`: 16 bits of port, then the range's bits of an IPv6
// address (an IPv4 range as ::ffff:a.b.c.d/96+bits). No sources: the port alone, every sender.
std::vector<toa_sockops_trust_key> TrustKeys(uint16_t port, const FilterSpec& trust) {
  std::vector<toa_sockops_trust_key> keys;
  auto key = [&](uint32_t bits) {
    toa_sockops_trust_key k{};
    k.prefixlen = 16 + bits;
    k.port[0] = static_cast<uint8_t>(port >> 8);
    k.port[1] = static_cast<uint8_t>(port);
    return k;
  };
  if (!trust.check_sources) {
    keys.push_back(key(0));
    return keys;
  }
  for (const SourceRange& r : trust.sources) {
    if (r.family == 4) {
      toa_sockops_trust_key k = key(96 + (r.prefix > 32 ? 32 : r.prefix));
      k.address[10] = 0xff;
      k.address[11] = 0xff;
      std::memcpy(k.address + 12, r.bytes, 4);
      keys.push_back(k);
    } else if (r.family == 6) {
      toa_sockops_trust_key k = key(r.prefix > 128 ? 128 : r.prefix);
      std::memcpy(k.address, r.bytes, 16);
      keys.push_back(k);
    }
  }
  return keys;
}

int UpdateTrust(State& s, const toa_sockops_trust_key& k, bool add) {
  const uint8_t one = 1;
  bpf_attr attr{};
  attr.map_fd = static_cast<uint32_t>(s.trust);
  attr.key = reinterpret_cast<uintptr_t>(&k);
  if (!add) return Bpf(BPF_MAP_DELETE_ELEM, &attr) == 0 ? 0 : errno;
  attr.value = reinterpret_cast<uintptr_t>(&one);
  attr.flags = BPF_ANY;
  return Bpf(BPF_MAP_UPDATE_ELEM, &attr) == 0 ? 0 : errno;
}

// Whether another watcher of `port` still holds the same key (one key is one trie entry).
bool HeldElsewhere(const State& s, uint16_t port, const toa_sockops_trust_key& k, size_t except) {
  for (size_t i = 0; i < s.trusted.size(); i++) {
    if (i == except || s.trusted[i].first != port) continue;
    for (const auto& other : s.trusted[i].second) {
      if (std::memcmp(&other, &k, sizeof k) == 0) return true;
    }
  }
  return false;
}

}  // namespace

int SockopsLoad(const char** failed_call, std::string* log, bool hold) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (LoadLocked(s, failed_call, log) != 0 || !hold) return s.error;
  if (const int err = Attach(s, failed_call); err != 0) return err;
  s.holds++;
  return 0;
}

int SockopsWatch(uint16_t port, const FilterSpec& trust, const char** failed_call, std::string* log) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (LoadLocked(s, failed_call, log) != 0) return s.error;
  if (const int err = Attach(s, failed_call); err != 0) return err;
  if (s.holds > 0) s.holds--;
  std::vector<toa_sockops_trust_key> keys = TrustKeys(port, trust);
  for (const auto& k : keys) {
    const int err = UpdateTrust(s, k, true);
    if (err != 0) {
      DetachIfIdle(s);
      *failed_call = "bpf(BPF_MAP_UPDATE_ELEM)";
      return err;
    }
  }
  s.trusted.emplace_back(port, std::move(keys));
  if (s.watchers[port]++ == 0) {
    s.bits[port >> 3] |= static_cast<uint8_t>(1u << (port & 7));
    const int err = WritePorts(s);
    if (err != 0) {
      s.watchers[port]--;
      s.bits[port >> 3] &= static_cast<uint8_t>(~(1u << (port & 7)));
      DetachIfIdle(s);
      *failed_call = "bpf(BPF_MAP_UPDATE_ELEM)";
      return err;
    }
    s.watched++;
  }
  return 0;
}

void SockopsUnwatch(uint16_t port) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.watchers[port] == 0) return;
  for (size_t i = 0; i < s.trusted.size(); i++) {
    if (s.trusted[i].first != port) continue;
    for (const auto& k : s.trusted[i].second) {
      if (!HeldElsewhere(s, port, k, i)) UpdateTrust(s, k, false);
    }
    s.trusted.erase(s.trusted.begin() + static_cast<std::ptrdiff_t>(i));
    break;
  }
  if (--s.watchers[port] != 0) return;
  s.bits[port >> 3] &= static_cast<uint8_t>(~(1u << (port & 7)));
  WritePorts(s);
  s.watched--;
  DetachIfIdle(s);
}

bool SockopsRecent(const uint32_t remote[4], const uint32_t local[4], uint32_t ports, toa_sockops_slot* out) {
  const uint8_t* slots = state().slots;
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
  const int conns = state().conns;
  if (conns < 0) return ENOENT;
  bpf_attr attr{};
  attr.map_fd = static_cast<uint32_t>(conns);
  attr.key = reinterpret_cast<uintptr_t>(&fd);
  attr.value = reinterpret_cast<uintptr_t>(out);
  if (BpfElem(BPF_MAP_LOOKUP_ELEM, &attr) == 0) return 0;
  if (errno != ENOENT) return errno;
  // accept() can return the socket while the softirq that completed the handshake still holds it,
  // before the program ran; a call that locks the socket waits for that to end. Only a miss pays.
  tcp_info info;
  socklen_t size = sizeof info;
  getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &size);
  return BpfElem(BPF_MAP_LOOKUP_ELEM, &attr) == 0 ? 0 : errno;
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
#endif

}  // namespace toa
