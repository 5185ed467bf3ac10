#include "tap_sockets.h"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "sockops.h"
#include "sockops_parse.h"
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

#if defined(__linux__)

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
  if (sockops_port_ != 0) SockopsUnwatch(sockops_port_);
  sockops_port_ = 0;
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
  // Mapped whole now (MAP_POPULATE): a frame read for the first time would cost a page fault in
  // the lookup path.
  void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fds_[i], 0);
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
    err = SetFilter(FilterSpec());
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

int Tap::OpenSockops(int listener_fd, uint16_t port, const FilterSpec& trust, const char** failed_call,
                     std::string* log) {
  if (port == 0) return EINVAL;
  const int err = SockopsWatch(port, trust, failed_call, log);
  if (err != 0) return err;
  sockops_port_ = port;
  // The program sees the sockets of the cgroup in every namespace; the one reported is the
  // listener's, as for packet sockets.
  const int nsfd = listener_fd >= 0 ? ioctl(listener_fd, SIOCGSKNS) : -1;
  netns_ = nsfd >= 0 ? NamespaceInode(nsfd) : OwnNamespaceInode();
  if (nsfd >= 0) close(nsfd);
  return 0;
}

int Tap::SetFilter(const FilterSpec& spec) {
  for (int i = 0; i < 2; i++) {
    if (fds_[i] < 0) continue;
    const std::vector<BpfInsn> code = BuildFilter(spec, i == 0 ? 4 : 6);
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
    if (loss_pending_[i]) {
      table_.NoteLoss();
      loss_pending_[i] = false;
    }
  }
  return total;
}

size_t Tap::DrainRing(int i, const uint8_t* kind_table, size_t max_packets) {
  Ring& r = rings_[i];
  size_t n = 0;
  uint64_t now = 0;
  while (n < max_packets) {
    auto* frame = reinterpret_cast<tpacket2_hdr*>(r.base + static_cast<size_t>(r.next) * kFrameSize);
    const uint32_t status = __atomic_load_n(&frame->tp_status, __ATOMIC_ACQUIRE);
    if ((status & TP_STATUS_USER) == 0) break;
    if (now == 0) now = MonotonicMs();
    // The kernel dropped packets before this one (and marks frames so until the drop count is
    // read, which resets it): what the table kept before may have lost its successor.
    if ((status & TP_STATUS_LOSING) != 0) {
      table_.NoteLoss();
      UpdateDrops();
    }
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
  // Without a ring no frame says when packets were lost: the drop count is read (and reset) once
  // what was read is in the table, so a loss counts against every packet that may have come
  // before it (some that came after it are refused too, never the other way round).
  if (total > 0) UpdateDrops();
  return total;
}

void Tap::UpdateDrops() {
  uint64_t dropped = 0;
  for (int i = 0; i < 2; i++) {
    if (fds_[i] < 0) continue;
    tpacket_stats stats{};
    socklen_t size = sizeof stats;
    if (getsockopt(fds_[i], SOL_PACKET, PACKET_STATISTICS, &stats, &size) == 0 && stats.tp_drops != 0) {
      dropped += stats.tp_drops;
      loss_pending_[i] = true;
    }
  }
  table_.counters().drops += dropped;
  // The read resets the kernel's count, and with it the ring's TP_STATUS_LOSING marks, so whoever
  // reads it (stats() too) tells the table: now, for what it holds, and again once the packets
  // still queued on that socket, which may have come before the loss, are read (Drain).
  if (dropped != 0) table_.NoteLoss();
}

namespace {

// An end as the sock_ops program keys it: IPv4 as ::ffff:a.b.c.d.
void EndWords(const Address& a, uint32_t out[4]) {
  uint8_t bytes[16] = {};
  if (a.family == 4) {
    bytes[10] = 0xff;
    bytes[11] = 0xff;
    std::memcpy(bytes + 12, a.bytes, 4);
  } else {
    std::memcpy(bytes, a.bytes, 16);
  }
  std::memcpy(out, bytes, 16);
}

}  // namespace

// Whether the connection of `fd` has no storage because its sender is one the program keeps
// nothing of (no watcher of the port trusts it): the program's trust list says, asked with the
// saved SYN's source, or getpeername's without one. An untrusted sender's connection has only its
// slot, which another connection may have taken by the time of the read. Sets out->peer then.
bool Tap::KeptNothingOf(int fd, const Packet* syn, TapHit* out) const {
  Address peer;
  if (syn != nullptr && syn->ok) {
    peer = syn->src;
  } else if (PeerName(fd, &peer) != 0) {
    return false;
  }
  uint32_t words[4];
  EndWords(peer, words);
  if (SockopsTrusted(words, sockops_port_)) return false;
  out->peer = peer;
  return true;
}

// Through the sock_ops program: the slot the program filled for the saved SYN's ends (no system
// call), else the connection's socket storage (one bpf() lookup: no saved SYN under syncookies, or
// the slot was another connection's by then), which the program makes for trusted senders only
// (for the others its trust list says so: one lookup more). The program's copy of a syncookie SYN
// plays the saved SYN's part, as the table's SYN does for packet sockets.
int Tap::ClaimSockops(int fd, const Packet* syn, const uint8_t* kind_table, TapHit* out) {
  TapCounters& counters = table_.counters();
  counters.lookups++;
  *out = TapHit();
  bool read = false;
  if (syn != nullptr && syn->ok) {
    uint32_t remote[4];
    uint32_t local[4];
    EndWords(syn->src, remote);
    EndWords(syn->dst, local);
    toa_sockops_slot slot;
    // The slot is this connection's when the ACK it holds, or the sequence number it holds for an
    // untrusted sender's, follows the saved SYN; else (another connection on these ends, or none
    // yet) the storage says.
    if (SockopsRecent(remote, local, (static_cast<uint32_t>(syn->src.port) << 16) | syn->dst.port, &slot)) {
      if (slot.ack_len > 0) {
        read = ParseFollowing(slot.ack, slot.ack_len, slot.data, slot.data_len, syn, kind_table, out);
      } else {
        read = ntohl(slot.ack_seq) == SeqAfterSyn(*syn);  // nothing kept: not trusted
      }
      if (read) out->peer = syn->src;
    }
  }
  if (!read) {
    toa_sockops_conn conn;
    counters.storage_lookups++;
    int err = SockopsLookup(fd, &conn);
    // No storage: a sender the program keeps nothing of (whose slot another connection took), or
    // a connection the program has not reached yet, or never saw.
    if (err == ENOENT) {
      if (KeptNothingOf(fd, syn, out)) return 0;
      SockopsAwaitProgram(fd);
      err = SockopsLookup(fd, &conn);
      // The program runs for the sockets of this process's cgroup: a listener made elsewhere (a
      // socket handed over by systemd, another process) is not among them.
      if (err == ENOENT) counters.unseen++;
    }
    if (err != 0) return err;
    Packet kept;
    bool saved = false;
    ParseSockopsConn(conn, kind_table, &kept, &saved, out);
    if (!saved && kept.toa.count > 0) {
      out->syn_found = true;
      out->syn_options = kept.toa;
    }
  }
  if (out->found) counters.toa_found++;
  if (out->found || (out->syn_found && out->syn_options.count > 0)) counters.hits++;
  return 0;
}

int Tap::Claim(int fd, const Packet* syn, const uint8_t* kind_table, TapHit* out) {
  if (sockops_port_ != 0) return ClaimSockops(fd, syn, kind_table, out);
  TakeQuery query;
  if (syn != nullptr && syn->ok) {
    query.peer = syn->src;
    query.local = syn->dst;
    query.has_next_seq = true;
    query.next_seq = SeqAfterSyn(*syn);
  } else {
    int err = PeerName(fd, &query.peer);
    if (err == 0) err = SockName(fd, &query.local);
    if (err != 0) return err;
  }
  TapCounters& counters = table_.counters();
  counters.lookups++;
  // Every packet of this connection up to the one that completed the handshake was queued on the
  // tap before accept() returned, in order (the sockets are bound to ETH_P_ALL: walked before IP).
  // With a ring an empty queue is a memory read.
  Drain(kind_table, kMaxDrainOnLookup, Unmapped(query.peer).family);
  // Without a sequence number to check what the table kept, a loss must count even when no frame
  // came after it to carry TP_STATUS_LOSING: the kernel's count says. Only this path (no saved
  // SYN: syncookies) pays the system call.
  if (!query.has_next_seq) UpdateDrops();
  table_.Take(query, kind_table, MonotonicMs(), out);
  if (out->found || (out->syn_found && out->syn_options.count > 0)) counters.hits++;
  return 0;
}

#else  // !__linux__
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
int Tap::OpenSockops(int, uint16_t, const FilterSpec&, const char** failed_call, std::string*) {
  *failed_call = "bpf";
  return ENOTSUP;
}
int Tap::SetFilter(const FilterSpec&) { return ENOTSUP; }
size_t Tap::Drain(const uint8_t*, size_t, int) { return 0; }
void Tap::UpdateDrops() {}
int Tap::Claim(int, const Packet*, const uint8_t*, TapHit* out) {
  out->found = false;
  out->syn_found = false;
  return ENOTSUP;
}

#endif

}  // namespace toa
