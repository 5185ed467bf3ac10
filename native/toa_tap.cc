#include "toa_tap.h"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>

#include "toa_sys.h"

#if defined(__linux__)
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#endif

namespace toa {

// ---------------------------------------------------------------------------------------------
// The table: portable, no syscalls.

bool TupleKey::operator==(const TupleKey& o) const {
  return family == o.family && sport == o.sport && dport == o.dport &&
         std::memcmp(src, o.src, sizeof src) == 0 && std::memcmp(dst, o.dst, sizeof dst) == 0;
}

size_t TupleHash::operator()(const TupleKey& k) const {
  uint64_t words[5];
  std::memcpy(&words[0], k.src, 16);
  std::memcpy(&words[2], k.dst, 16);
  words[4] = (static_cast<uint64_t>(k.family) << 32) | (static_cast<uint64_t>(k.sport) << 16) | k.dport;
  uint64_t h = seed;
  for (uint64_t w : words) {
    h ^= w + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2);
    h *= 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 31;
  }
  return static_cast<size_t>(h);
}

Address Unmapped(const Address& a) {
  static const uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (a.family != 6 || std::memcmp(a.bytes, kMappedPrefix, sizeof kMappedPrefix) != 0) return a;
  Address v4;
  v4.family = 4;
  std::memcpy(v4.bytes, a.bytes + 12, 4);
  v4.port = a.port;
  return v4;
}

namespace {

TupleKey KeyOf(const Address& src, const Address& dst) {
  TupleKey k;
  k.family = src.family;
  std::memcpy(k.src, src.bytes, sizeof k.src);
  std::memcpy(k.dst, dst.bytes, sizeof k.dst);
  k.sport = src.port;
  k.dport = dst.port;
  return k;
}

// What the table needs of a TCP header beyond what ParsePacket gives.
struct TcpView {
  const uint8_t* options = nullptr;
  size_t options_length = 0;
  uint32_t seq = 0;
  uint32_t payload = 0;  // as the IP header declares it: the capture may be cut short
};

// The TCP header of a packet ParsePacket accepted. The tap's filter passes only IPv6 packets
// without extension headers, so an IPv6 packet with them yields nothing here.
bool ViewTcp(const uint8_t* data, size_t length, TcpView* v) {
  size_t tcp;
  size_t ip_payload;  // bytes after the IP header, as declared
  if ((data[0] >> 4) == 4) {
    tcp = static_cast<size_t>(data[0] & 0x0f) * 4;
    const size_t total = (static_cast<size_t>(data[2]) << 8) | data[3];
    ip_payload = total > tcp ? total - tcp : 0;
  } else if (length >= 40 && data[6] == 6) {
    tcp = 40;
    ip_payload = (static_cast<size_t>(data[4]) << 8) | data[5];
  } else {
    return false;
  }
  if (tcp + 20 > length) return false;
  const uint8_t* h = data + tcp;
  const size_t header = static_cast<size_t>(h[12] >> 4) * 4;
  if (header < 20 || tcp + header > length) return false;
  v->options = h + 20;
  v->options_length = header - 20;
  v->seq = (static_cast<uint32_t>(h[4]) << 24) | (static_cast<uint32_t>(h[5]) << 16) |
           (static_cast<uint32_t>(h[6]) << 8) | h[7];
  v->payload = static_cast<uint32_t>(ip_payload > header ? ip_payload - header : 0);
  return true;
}

// Options other than those every TCP stack sends (NOP, EOL, MSS, window scale, SACK, timestamps):
// a TOA of a kind nobody has configured yet, or something else. Kept, in case a kind table
// configured later recognises it.
bool HasUncommonOption(const uint8_t* options, size_t length) {
  size_t i = 0;
  while (i < length) {
    const uint8_t kind = options[i];
    if (kind == 0) return false;
    if (kind == 1) {
      i++;
      continue;
    }
    if (i + 1 >= length) return false;
    const uint8_t len = options[i + 1];
    if (len < 2 || len > length - i) return false;
    if (kind > 8 || kind == 6 || kind == 7) return true;
    i += len;
  }
  return false;
}

}  // namespace

TupleTable::TupleTable(size_t capacity, uint64_t max_age_ms)
    : capacity_(capacity == 0 ? 1 : capacity), max_age_ms_(max_age_ms) {
  // Reserved, not touched: memory grows with use up to the bound.
  slots_.reserve(capacity_);
  std::random_device random;
  TupleHash hash;
  hash.seed = (static_cast<uint64_t>(random()) << 32) ^ random();
  index_ = std::unordered_map<TupleKey, uint32_t, TupleHash>(16, hash);
  index_.reserve(capacity_ < 4096 ? capacity_ : 4096);
}

void TupleTable::Kill(uint32_t slot) {
  Slot& s = slots_[slot];
  if (!s.live) return;
  index_.erase(s.key);
  s.live = false;
}

void TupleTable::Expire(uint64_t now_ms) {
  while (used_ > 0) {
    Slot& s = slots_[head_];
    if (s.live) {
      if (now_ms - s.time_ms <= max_age_ms_) return;
      index_.erase(s.key);
      s.live = false;
      counters_.expired++;
    }
    head_ = (head_ + 1) % capacity_;
    used_--;
  }
}

uint32_t TupleTable::Append() {
  if (used_ == capacity_) {
    Slot& oldest = slots_[head_];
    if (oldest.live) {
      index_.erase(oldest.key);
      oldest.live = false;
      counters_.evictions++;
    }
    head_ = (head_ + 1) % capacity_;
    used_--;
  }
  // head_ + used_ only ever grows by one per append, so the ring fills slot 0, 1, 2, ... first.
  const size_t slot = (head_ + used_) % capacity_;
  if (slot == slots_.size()) slots_.emplace_back();
  used_++;
  return static_cast<uint32_t>(slot);
}

bool TupleTable::Offer(const uint8_t* data, size_t length, const uint8_t* kind_table, uint64_t now_ms) {
  const Packet p = ParsePacket(data, length, kind_table);
  TcpView v;
  if (!p.ok || !ViewTcp(data, length, &v)) {
    counters_.malformed++;
    return false;
  }
  counters_.packets++;
  const TupleKey key = KeyOf(p.src, p.dst);
  auto found = index_.find(key);
  if ((p.tcp_flags & kTcpSyn) != 0) {
    counters_.syns++;
    if ((p.tcp_flags & (kTcpAck | kTcpRst)) != 0) return true;  // not a connection request
    // A new connection on this tuple: whatever was kept belonged to an earlier one. Its record
    // holds the sequence number the handshake ACK and the first data byte must carry.
    if (found != index_.end()) Kill(found->second);
    Expire(now_ms);
    const uint32_t slot = Append();
    Slot& s = slots_[slot];
    s.key = key;
    s.time_ms = now_ms;
    s.live = true;
    s.has_toa = false;
    s.next_seq = v.seq + 1 + v.payload;  // + data carried by the SYN itself (TCP Fast Open)
    s.options_length = 0;
    index_.emplace(key, slot);
    counters_.inserted++;
    return true;
  }
  if ((p.tcp_flags & kTcpRst) != 0) return true;
  const bool shaped = p.toa.count > 0;
  if (!shaped && !HasUncommonOption(v.options, v.options_length)) return true;
  if (found == index_.end()) {
    counters_.unmatched++;  // no SYN seen on this tuple: forged, or older than the tap
    return true;
  }
  Slot& s = slots_[found->second];
  if (v.seq != s.next_seq) {
    // Not the packet that completes this handshake nor the first data byte: an off-path sender
    // that spoofs the proxy's address cannot know the SYN's sequence number.
    counters_.bad_seq++;
    return true;
  }
  if (shaped) counters_.toa_found++;
  // The first packet with a TOA-shaped option decides, as the first such option decides within a
  // packet: a later one (the first data packet after a tagged ACK) never overrides it.
  if (s.has_toa || (s.options_length > 0 && !shaped)) return true;
  std::memcpy(s.options, v.options, v.options_length);
  s.options_length = static_cast<uint8_t>(v.options_length);
  s.has_toa = shaped;
  s.data = v.payload > 0;
  return true;
}

bool TupleTable::Take(const Address& peer, const Address& local, const uint8_t* kind_table,
                      uint64_t now_ms, TapHit* out) {
  const Address src = Unmapped(peer);
  const Address dst = Unmapped(local);
  if (src.family != dst.family) return false;
  auto found = index_.find(KeyOf(src, dst));
  if (found == index_.end()) return false;
  const uint32_t slot = found->second;
  Slot& s = slots_[slot];
  Kill(slot);  // consumed: the resolver caches the answer on the socket
  if (now_ms - s.time_ms > max_age_ms_) {
    counters_.expired++;
    return false;
  }
  if (s.options_length == 0) return false;
  // Never a SYN: F9 89 here is a port, not a TCP Fast Open cookie.
  FindToaOptions(s.options, s.options_length, kind_table, false, &out->options);
  if (out->options.count == 0) return false;
  out->peer = src;
  out->data = s.data;
  return true;
}

// ---------------------------------------------------------------------------------------------
// The BPF program.

#if defined(__linux__)

namespace {

class Assembler {
 public:
  static constexpr int kNext = -1;

  int Label() {
    labels_.push_back(-1);
    return static_cast<int>(labels_.size()) - 1;
  }
  void Bind(int label) { labels_[label] = static_cast<int>(code_.size()); }
  void Op(uint16_t code, uint32_t k) { code_.push_back(BpfInsn{code, 0, 0, k}); }
  void Jump(uint16_t code, uint32_t k, int if_true, int if_false) {
    fixups_.push_back({code_.size(), if_true, if_false});
    code_.push_back(BpfInsn{code, 0, 0, k});
  }
  void Always(int label) { Jump(BPF_JMP | BPF_JA, 0, label, kNext); }

  // Resolves the labels; empty when a conditional jump would be longer than 255 instructions.
  std::vector<BpfInsn> Finish() {
    for (const Fixup& f : fixups_) {
      BpfInsn& insn = code_[f.pc];
      const auto distance = [&](int label) -> long {
        return label == kNext ? 0 : static_cast<long>(labels_[label]) - static_cast<long>(f.pc) - 1;
      };
      if ((insn.code & 0xf0) == BPF_JA) {
        insn.k = static_cast<uint32_t>(distance(f.if_true));
        continue;
      }
      const long jt = distance(f.if_true);
      const long jf = distance(f.if_false);
      if (jt < 0 || jt > 255 || jf < 0 || jf > 255) return {};
      insn.jt = static_cast<uint8_t>(jt);
      insn.jf = static_cast<uint8_t>(jf);
    }
    return code_;
  }

 private:
  struct Fixup {
    size_t pc;
    int if_true;
    int if_false;
  };
  std::vector<BpfInsn> code_;
  std::vector<int> labels_;
  std::vector<Fixup> fixups_;
};

}  // namespace

// The packet starts at its IP header (SOCK_DGRAM). Passes, to one of `ports`, from this host's
// point of view incoming (PACKET_HOST):
//   - SYNs (flags SYN without ACK/RST), so a reused 4-tuple forgets the previous connection;
//   - other packets without SYN or RST whose TCP header is longer than 20 bytes, except a header
//     of exactly 32 bytes that starts NOP NOP TIMESTAMP: that is the timestamp-only case of
//     every Linux packet, and no TOA can sit in it.
// IPv4 later fragments and IPv6 packets with extension headers are not passed, nor any packet of
// another protocol than `family`'s.
std::vector<BpfInsn> BuildFilter(const std::vector<uint16_t>& ports, int family) {
  if (ports.size() > kMaxTapPorts || (family != 4 && family != 6)) return {};
  Assembler a;
  const int drop = a.Label(), accept = a.Label(), v4 = a.Label(), v6 = a.Label();
  const int tcp = a.Label(), port_ok = a.Label(), maybe_ts = a.Label();
  const int next = Assembler::kNext;

  if (ports.empty()) {
    a.Op(BPF_RET | BPF_K, 0);
    return a.Finish();
  }
  a.Op(BPF_LD | BPF_W | BPF_ABS, static_cast<uint32_t>(SKF_AD_OFF + SKF_AD_PKTTYPE));
  a.Jump(BPF_JMP | BPF_JEQ | BPF_K, PACKET_HOST, next, drop);
  // Bound to ETH_P_ALL, the socket sees every protocol; this one reads only its family's.
  a.Op(BPF_LD | BPF_W | BPF_ABS, static_cast<uint32_t>(SKF_AD_OFF + SKF_AD_PROTOCOL));
  a.Jump(BPF_JMP | BPF_JEQ | BPF_K, family == 4 ? ETH_P_IP : ETH_P_IPV6, next, drop);
  a.Op(BPF_LD | BPF_B | BPF_ABS, 0);
  a.Op(BPF_ALU | BPF_RSH | BPF_K, 4);
  a.Jump(BPF_JMP | BPF_JEQ | BPF_K, 4, v4, next);
  a.Jump(BPF_JMP | BPF_JEQ | BPF_K, 6, v6, drop);

  a.Bind(v4);
  a.Op(BPF_LD | BPF_B | BPF_ABS, 9);  // protocol
  a.Jump(BPF_JMP | BPF_JEQ | BPF_K, 6, next, drop);
  a.Op(BPF_LD | BPF_H | BPF_ABS, 6);  // flags and fragment offset
  a.Jump(BPF_JMP | BPF_JSET | BPF_K, 0x1fff, drop, next);
  a.Op(BPF_LDX | BPF_B | BPF_MSH, 0);  // X = IHL * 4
  a.Always(tcp);

  a.Bind(v6);
  a.Op(BPF_LD | BPF_B | BPF_ABS, 6);  // next header
  a.Jump(BPF_JMP | BPF_JEQ | BPF_K, 6, next, drop);
  a.Op(BPF_LDX | BPF_W | BPF_IMM, 40);

  a.Bind(tcp);
  a.Op(BPF_LD | BPF_H | BPF_IND, 2);  // destination port
  for (size_t i = 0; i < ports.size(); i++) {
    a.Jump(BPF_JMP | BPF_JEQ | BPF_K, ports[i], port_ok, i + 1 == ports.size() ? drop : next);
  }

  a.Bind(port_ok);
  a.Op(BPF_LD | BPF_B | BPF_IND, 13);  // flags
  a.Op(BPF_ALU | BPF_AND | BPF_K, 0x16);  // SYN | RST | ACK
  a.Jump(BPF_JMP | BPF_JEQ | BPF_K, 0x02, accept, next);
  a.Jump(BPF_JMP | BPF_JSET | BPF_K, 0x06, drop, next);  // SYN-ACK, RST: nothing to learn

  a.Op(BPF_LD | BPF_B | BPF_IND, 12);  // data offset
  a.Op(BPF_ALU | BPF_RSH | BPF_K, 4);
  a.Jump(BPF_JMP | BPF_JGT | BPF_K, 5, next, drop);
  a.Jump(BPF_JMP | BPF_JEQ | BPF_K, 8, maybe_ts, accept);
  a.Bind(maybe_ts);
  a.Op(BPF_LD | BPF_W | BPF_IND, 20);  // the first option word
  a.Jump(BPF_JMP | BPF_JEQ | BPF_K, 0x0101080a, drop, accept);

  a.Bind(accept);
  a.Op(BPF_RET | BPF_K, kTapSnapLength);
  a.Bind(drop);
  a.Op(BPF_RET | BPF_K, 0);
  return a.Finish();
}

// ---------------------------------------------------------------------------------------------
// The sockets.

bool TapSupported() { return true; }

uint64_t MonotonicMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

int ProbePacketSocket() {
  // Protocol 0: the socket receives nothing, it only proves the capability.
  const int fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  close(fd);
  return 0;
}

namespace {

constexpr size_t kBatch = 64;
// A ring frame: tpacket2_hdr, sockaddr_ll, then the packet at tp_net (80 bytes in for a
// SOCK_DGRAM socket), room for the 128-byte snap. Frames never straddle a block.
constexpr uint32_t kFrameSize = 256;
constexpr uint32_t kBlockSize = 4096;
// A lookup drains at most this much: more than a full receive buffer holds, and a bound when a
// flood refills the queue as fast as it is read.
constexpr size_t kMaxDrainOnLookup = 1 << 16;

int AttachFilter(int fd, const std::vector<BpfInsn>& code) {
  static_assert(sizeof(BpfInsn) == sizeof(sock_filter), "BpfInsn must match struct sock_filter");
  if (code.empty()) return EINVAL;
  sock_fprog program{};
  program.len = static_cast<unsigned short>(code.size());
  program.filter = reinterpret_cast<sock_filter*>(const_cast<BpfInsn*>(code.data()));
  return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof program) == 0 ? 0 : errno;
}

// Creates the two sockets in the calling thread's network namespace. They receive nothing until
// bound to a protocol, which Tap::Open does after a drop-all filter is attached.
int CreateSockets(int fds[2]) {
  for (int i = 0; i < 2; i++) {
    fds[i] = socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fds[i] < 0) return errno;
  }
  return 0;
}

// The inode that identifies a network namespace, or 0.
uint64_t NamespaceInode(int nsfd) {
  struct stat st {};
  return fstat(nsfd, &st) == 0 ? static_cast<uint64_t>(st.st_ino) : 0;
}

uint64_t OwnNamespaceInode() {
  struct stat st {};
  if (stat("/proc/thread-self/ns/net", &st) == 0 || stat("/proc/self/ns/net", &st) == 0) {
    return static_cast<uint64_t>(st.st_ino);
  }
  return 0;
}

}  // namespace

Tap::Tap(const TapOptions& options)
    : receive_buffer_(options.receive_buffer),
      ring_frames_(options.ring_frames),
      table_(options.capacity, options.max_age_ms),
      buffers_(kBatch * kTapSnapLength) {}

Tap::~Tap() { Close(); }

void Tap::Close() {
  for (int i = 0; i < 2; i++) {
    if (rings_[i].base != nullptr) munmap(rings_[i].base, rings_[i].size);
    rings_[i] = Ring();
    if (fds_[i] >= 0) close(fds_[i]);
    fds_[i] = -1;
  }
}

// TPACKET_V2 receive ring: the kernel writes each passed packet into the next frame and flips
// its status to TP_STATUS_USER; we read frames in order and hand them back. Returns an errno;
// the caller then reads with recvmmsg instead.
int Tap::SetUpRing(int i) {
  if (ring_frames_ == 0) return EINVAL;
  const int version = TPACKET_V2;
  if (setsockopt(fds_[i], SOL_PACKET, PACKET_VERSION, &version, sizeof version) != 0) return errno;
  const uint32_t per_block = kBlockSize / kFrameSize;
  const uint32_t blocks = (ring_frames_ + per_block - 1) / per_block;
  tpacket_req request{};
  request.tp_block_size = kBlockSize;
  request.tp_block_nr = blocks;
  request.tp_frame_size = kFrameSize;
  request.tp_frame_nr = blocks * per_block;
  if (setsockopt(fds_[i], SOL_PACKET, PACKET_RX_RING, &request, sizeof request) != 0) return errno;
  const size_t size = static_cast<size_t>(blocks) * kBlockSize;
  void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fds_[i], 0);
  if (base == MAP_FAILED) return errno;
  rings_[i].base = static_cast<uint8_t*>(base);
  rings_[i].size = size;
  rings_[i].frames = request.tp_frame_nr;
  rings_[i].next = 0;
  return 0;
}

int Tap::Open(int listener_fd, const char** failed_call) {
  *failed_call = "socket(AF_PACKET)";
  const uint64_t own = OwnNamespaceInode();
  int nsfd = -1;
  if (listener_fd >= 0) {
    // A socket keeps the namespace it was created in; a listener passed over a Unix socket (a
    // container's, a test namespace's) may not be in ours. Kernels before 4.9 lack SIOCGSKNS:
    // then the listener is taken to be ours.
    nsfd = ioctl(listener_fd, SIOCGSKNS);
    if (nsfd < 0 && errno != EINVAL && errno != ENOTTY && errno != EOPNOTSUPP) {
      *failed_call = "ioctl(SIOCGSKNS)";
      return errno;
    }
  }
  const uint64_t theirs = nsfd >= 0 ? NamespaceInode(nsfd) : own;
  netns_ = theirs;
  int err = 0;
  if (nsfd < 0 || theirs == own) {
    err = CreateSockets(fds_);
  } else {
    // setns changes only the calling thread's namespace, so a short-lived thread does it.
    std::thread worker([&] {
      if (setns(nsfd, CLONE_NEWNET) != 0) {
        err = errno;
        *failed_call = "setns(CLONE_NEWNET)";
        return;
      }
      err = CreateSockets(fds_);
    });
    worker.join();
  }
  if (nsfd >= 0) close(nsfd);
  if (err == 0) {
    err = SetPorts({});
    if (err != 0) *failed_call = "setsockopt(SO_ATTACH_FILTER)";
  }

  // Both sockets read the same way: rings for both, or recvmmsg for both.
  if (err == 0 && (SetUpRing(0) != 0 || SetUpRing(1) != 0)) {
    for (int i = 0; i < 2; i++) {
      if (rings_[i].base != nullptr) munmap(rings_[i].base, rings_[i].size);
      rings_[i] = Ring();
      tpacket_req none{};  // frees a ring the kernel set up, so the socket queues packets again
      setsockopt(fds_[i], SOL_PACKET, PACKET_RX_RING, &none, sizeof none);
    }
  }
  for (int i = 0; err == 0 && i < 2; i++) {
    // Without a ring the receive buffer bounds the queue. Root can go past net.core.rmem_max.
    if (rings_[i].base == nullptr &&
        setsockopt(fds_[i], SOL_SOCKET, SO_RCVBUFFORCE, &receive_buffer_, sizeof receive_buffer_) != 0) {
      setsockopt(fds_[i], SOL_SOCKET, SO_RCVBUF, &receive_buffer_, sizeof receive_buffer_);
    }
    // ETH_P_ALL, not ETH_P_IP/ETH_P_IPV6: since Linux 6.15 ("per netns packet type chains") a
    // socket bound to one protocol is walked after IP and TCP took the packet, so the server could
    // accept and read before the tap holds it. ETH_P_ALL sockets are still walked first, in the
    // same softirq, before IP. Outgoing packets are skipped before the filter even runs (4.20+;
    // older kernels run the filter, which drops them as not PACKET_HOST).
    const int ignore_outgoing = 1;
    setsockopt(fds_[i], SOL_PACKET, PACKET_IGNORE_OUTGOING, &ignore_outgoing, sizeof ignore_outgoing);
    sockaddr_ll address{};
    address.sll_family = AF_PACKET;
    address.sll_protocol = htons(ETH_P_ALL);
    if (bind(fds_[i], reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      err = errno;
      *failed_call = "bind(AF_PACKET)";
    }
  }
  if (err != 0) Close();
  return err;
}

int Tap::SetPorts(const std::vector<uint16_t>& ports) {
  for (int i = 0; i < 2; i++) {
    if (fds_[i] < 0) continue;
    const std::vector<BpfInsn> code = BuildFilter(ports, i == 0 ? 4 : 6);
    if (code.empty()) return E2BIG;
    const int err = AttachFilter(fds_[i], code);
    if (err != 0) return err;
  }
  return 0;
}

size_t Tap::Drain(const uint8_t* kind_table, size_t max_packets, int family) {
  size_t total = 0;
  for (int i = 0; i < 2; i++) {
    if (fds_[i] < 0 || (family == 4 && i != 0) || (family == 6 && i != 1)) continue;
    total += rings_[i].base != nullptr ? DrainRing(i, kind_table, max_packets - total)
                                       : DrainSocket(i, kind_table, max_packets - total);
  }
  return total;
}

size_t Tap::DrainRing(int i, const uint8_t* kind_table, size_t max_packets) {
  Ring& r = rings_[i];
  size_t n = 0;
  uint64_t now = 0;
  while (n < max_packets) {
    auto* frame = reinterpret_cast<tpacket2_hdr*>(r.base + static_cast<size_t>(r.next) * kFrameSize);
    if ((__atomic_load_n(&frame->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER) == 0) break;
    if (now == 0) now = MonotonicMs();
    const auto* address = reinterpret_cast<const sockaddr_ll*>(reinterpret_cast<const uint8_t*>(frame) +
                                                               TPACKET_ALIGN(sizeof(tpacket2_hdr)));
    const size_t offset = frame->tp_net;
    if (address->sll_pkttype == PACKET_HOST && offset < kFrameSize) {
      const size_t length = frame->tp_snaplen < kFrameSize - offset ? frame->tp_snaplen : kFrameSize - offset;
      table_.Offer(reinterpret_cast<const uint8_t*>(frame) + offset, length, kind_table, now);
    }
    __atomic_store_n(&frame->tp_status, static_cast<uint32_t>(TP_STATUS_KERNEL), __ATOMIC_RELEASE);
    r.next = r.next + 1 == r.frames ? 0 : r.next + 1;
    n++;
  }
  return n;
}

size_t Tap::DrainSocket(int i, const uint8_t* kind_table, size_t max_packets) {
  mmsghdr messages[kBatch];
  iovec vectors[kBatch];
  sockaddr_ll addresses[kBatch];
  size_t total = 0;
  while (total < max_packets) {
    std::memset(messages, 0, sizeof messages);
    for (size_t m = 0; m < kBatch; m++) {
      vectors[m].iov_base = buffers_.data() + m * kTapSnapLength;
      vectors[m].iov_len = kTapSnapLength;
      messages[m].msg_hdr.msg_iov = &vectors[m];
      messages[m].msg_hdr.msg_iovlen = 1;
      messages[m].msg_hdr.msg_name = &addresses[m];
      messages[m].msg_hdr.msg_namelen = sizeof addresses[m];
    }
    const int n = recvmmsg(fds_[i], messages, kBatch, MSG_DONTWAIT, nullptr);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EAGAIN: the queue is empty
    const uint64_t now = MonotonicMs();
    for (int m = 0; m < n; m++) {
      if (addresses[m].sll_pkttype != PACKET_HOST) continue;
      table_.Offer(buffers_.data() + m * kTapSnapLength, messages[m].msg_len, kind_table, now);
    }
    total += static_cast<size_t>(n);
    if (static_cast<size_t>(n) < kBatch) break;
  }
  return total;
}

void Tap::UpdateDrops() {
  for (int fd : fds_) {
    if (fd < 0) continue;
    tpacket_stats stats{};
    socklen_t size = sizeof stats;
    if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &stats, &size) == 0) {
      table_.counters().drops += stats.tp_drops;
    }
  }
}

int Tap::Lookup(int fd, const uint8_t* kind_table, const Address* known_peer, bool* found, TapHit* out) {
  *found = false;
  Address peer, local;
  int err = 0;
  if (known_peer != nullptr) {
    peer = *known_peer;
  } else {
    err = PeerName(fd, &peer);
  }
  if (err == 0) err = SockName(fd, &local);
  if (err != 0) return err;
  TapCounters& counters = table_.counters();
  counters.lookups++;
  // Every packet of this connection up to the one that completed the handshake was queued on the
  // tap before accept() returned, in order. Reading the queue first (only its family's socket:
  // one recvmmsg, usually empty) applies this connection's SYN before the table is asked, so an
  // entry a previous connection on the same 4-tuple left behind is gone by then.
  Drain(kind_table, kMaxDrainOnLookup, Unmapped(peer).family);
  if (!table_.Take(peer, local, kind_table, MonotonicMs(), out)) return 0;
  counters.hits++;
  *found = true;
  return 0;
}

#else  // !__linux__

std::vector<BpfInsn> BuildFilter(const std::vector<uint16_t>&, int) { return {}; }
bool TapSupported() { return false; }
uint64_t MonotonicMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}
int ProbePacketSocket() { return ENOTSUP; }
Tap::Tap(const TapOptions& options)
    : receive_buffer_(options.receive_buffer),
      ring_frames_(options.ring_frames),
      table_(options.capacity, options.max_age_ms) {}
Tap::~Tap() {}
void Tap::Close() {}
int Tap::Open(int, const char** failed_call) {
  *failed_call = "socket(AF_PACKET)";
  return ENOTSUP;
}
int Tap::SetPorts(const std::vector<uint16_t>&) { return ENOTSUP; }
size_t Tap::Drain(const uint8_t*, size_t, int) { return 0; }
void Tap::UpdateDrops() {}
int Tap::Lookup(int, const uint8_t*, const Address*, bool* found, TapHit*) {
  *found = false;
  return ENOTSUP;
}

#endif

}  // namespace toa
