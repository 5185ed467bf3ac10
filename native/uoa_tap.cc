#include "uoa_tap.h"

#include <cerrno>
#include <cstring>

#if defined(__linux__)
#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#endif

namespace toa {

namespace {

// The headers a UOA lives in fit well within this (IPv4 with 40 bytes of options, or IPv6 with a
// 248 header and a 20-byte option, then UDP's 8).
constexpr uint32_t kSnap = 256;
// At most this many packets are read per call: a flood cannot hold a datagram's path for long.
constexpr size_t kMaxDrain = 4096;

#pragma pack(push, 1)
struct UoaParamMap {
  uint16_t af;  // host order, as DPVS's examples fill it
  uint8_t saddr[16];
  uint8_t daddr[16];
  uint16_t sport;  // network order
  uint16_t dport;
  uint16_t real_af;
  uint8_t real_saddr[16];
  uint16_t real_sport;
};
#pragma pack(pop)
static_assert(sizeof(UoaParamMap) == 58, "uoa_param_map is 58 bytes, packed");

constexpr int kUoaSoGetLookup = 2048;

}  // namespace

size_t UoaTap::KeyHash::operator()(const Key& k) const {
  // FNV-1a: the keys are a handful of proxy ends, hashed on every lookup.
  uint64_t h = 1469598103934665603ull;
  for (uint8_t b : k) h = (h ^ b) * 1099511628211ull;
  return static_cast<size_t>(h);
}

UoaTap::Key UoaTap::KeyOf(const UoaAddress& source) {
  Key k{};
  std::memcpy(k.data(), source.bytes, 16);
  k[16] = source.ipv6 ? 6 : 4;
  k[17] = static_cast<uint8_t>(source.port >> 8);
  k[18] = static_cast<uint8_t>(source.port);
  return k;
}

UoaTap::UoaTap(size_t capacity, uint64_t max_age_ms)
    : capacity_(capacity == 0 ? 1 : capacity), max_age_ms_(max_age_ms), buffer_(kSnap + 64) {}

UoaTap::~UoaTap() { Close(); }

void UoaTap::Insert(const UoaPacket& p, uint64_t now) {
  const Key key = KeyOf(p.source);
  auto it = table_.find(key);
  if (it == table_.end()) {
    if (table_.size() >= capacity_) {
      // Room: first whatever has expired, else one entry (the table is a cache of recent flows).
      for (auto e = table_.begin(); e != table_.end();) {
        if (now - e->second.seen_ms > max_age_ms_) e = table_.erase(e);
        else ++e;
      }
      if (table_.size() >= capacity_) {
        table_.erase(table_.begin());
        stats_.evictions++;
      }
    }
    it = table_.emplace(key, Entry()).first;
  }
  it->second.client = p.client;
  it->second.seen_ms = now;
  it->second.fresh = true;
}

#if defined(__linux__)

bool UoaTapSupported() { return true; }

namespace {

uint64_t NowMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

// Offsets are from the network header (SOCK_DGRAM). Passes IPv4 UDP packets to `port` (0: any)
// that are not later fragments and carry options, IPv4 packets of protocol 248, and IPv6 packets
// whose next header is 248; drops everything else.
std::vector<sock_filter> Filter(uint16_t port) {
  const uint8_t acc = 15, drop = 16;
  std::vector<sock_filter> f = {
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0),                  // 0: version/IHL
      BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 4),                 // 1
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 4, 0, 13 - 3),      // 2: IPv4, else to 13
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 9),                  // 3: protocol
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 248, acc - 5, 0),   // 4
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 17, 0, drop - 6),   // 5
      BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 6),                  // 6: flags/fragment offset
      BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x1fff, drop - 8, 0),  // 7
      BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0),                 // 8: X = header length
      BPF_STMT(BPF_MISC | BPF_TXA, 0),                        // 9
      BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, 20, 0, drop - 11),  // 10: options present
      BPF_STMT(BPF_LD | BPF_H | BPF_IND, 2),                  // 11: UDP destination port
      // 12: the port (0: any, `A >= 0` always holds)
      BPF_JUMP(BPF_JMP | (port == 0 ? BPF_JGE : BPF_JEQ) | BPF_K, port, acc - 13, drop - 13),
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 6),                  // 13: IPv6 next header
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 248, acc - 15, drop - 15),  // 14
      BPF_STMT(BPF_RET | BPF_K, kSnap),                       // 15: accept
      BPF_STMT(BPF_RET | BPF_K, 0),                           // 16: drop
  };
  return f;
}

}  // namespace

int UoaTap::Open(uint16_t port, int receive_buffer, const char** failed_call) {
  Close();
  port_ = port;
  *failed_call = "socket(AF_PACKET)";
  // Protocol 0: nothing is received until bind, by which time the filter is on.
  const int fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  std::vector<sock_filter> code = Filter(port);
  sock_fprog program{};
  program.len = static_cast<unsigned short>(code.size());
  program.filter = code.data();
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof program) != 0) {
    const int err = errno;
    close(fd);
    *failed_call = "setsockopt(SO_ATTACH_FILTER)";
    return err;
  }
  if (receive_buffer > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &receive_buffer, sizeof receive_buffer) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
  }
#ifdef PACKET_IGNORE_OUTGOING
  const int one = 1;
  setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);  // also checked per packet
#endif
  sockaddr_ll address{};
  address.sll_family = AF_PACKET;
  address.sll_protocol = htons(ETH_P_ALL);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    const int err = errno;
    close(fd);
    *failed_call = "bind(AF_PACKET)";
    return err;
  }
  fd_ = fd;
  return 0;
}

void UoaTap::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  table_.clear();
}

void UoaTap::Drain() {
  if (fd_ < 0) return;
  const uint64_t now = NowMs();
  for (size_t n = 0; n < kMaxDrain; n++) {
    sockaddr_ll from{};
    socklen_t from_length = sizeof from;
    const ssize_t got = recvfrom(fd_, buffer_.data(), buffer_.size(), MSG_DONTWAIT | MSG_TRUNC,
                                 reinterpret_cast<sockaddr*>(&from), &from_length);
    if (got < 0) break;  // EAGAIN: all read (any other error: the next call tries again)
    if (from.sll_pkttype == PACKET_OUTGOING) continue;
    stats_.packets++;
    const size_t length = static_cast<size_t>(got) < buffer_.size() ? static_cast<size_t>(got) : buffer_.size();
    UoaPacket p;
    ParseUoaPacket(buffer_.data(), length, &p);
    if (p.status == kUoaPrivate) stats_.private_protocol++;
    if (p.status == kUoaMalformed) stats_.malformed++;
    if (!p.has_client) continue;
    if (port_ != 0 && p.destination.port != port_) continue;
    stats_.found++;
    Insert(p, now);
  }
}

bool UoaTap::Fresh(const UoaAddress& source, UoaAddress* client) {
  Drain();
  auto it = table_.find(KeyOf(source));
  if (it == table_.end() || !it->second.fresh) return false;
  if (NowMs() - it->second.seen_ms > max_age_ms_) {
    table_.erase(it);
    return false;
  }
  it->second.fresh = false;
  *client = it->second.client;
  return true;
}

UoaTapStats UoaTap::Stats() {
  if (fd_ >= 0) {
    tpacket_stats s{};
    socklen_t length = sizeof s;
    if (getsockopt(fd_, SOL_PACKET, PACKET_STATISTICS, &s, &length) == 0) stats_.drops += s.tp_drops;
  }
  return stats_;
}

int UoaModuleLookup(int fd, const UoaAddress& source, uint16_t local_port, UoaAddress* client) {
  UoaParamMap map{};
  map.af = source.ipv6 ? AF_INET6 : AF_INET;
  std::memcpy(map.saddr, source.bytes, source.ipv6 ? 16 : 4);
  map.sport = htons(source.port);
  map.dport = htons(local_port);  // daddr stays 0: any local address (the module's wildcard)
  socklen_t length = sizeof map;
  if (getsockopt(fd, IPPROTO_IP, kUoaSoGetLookup, &map, &length) != 0) return errno;
  if (length < sizeof map || (map.real_af != AF_INET && map.real_af != AF_INET6)) return ENOENT;
  UoaAddress a;
  a.ipv6 = map.real_af == AF_INET6;
  std::memcpy(a.bytes, map.real_saddr, a.ipv6 ? 16 : 4);
  a.port = ntohs(map.real_sport);
  *client = a;
  return 0;
}

#else

bool UoaTapSupported() { return false; }
int UoaTap::Open(uint16_t, int, const char** failed_call) {
  *failed_call = "socket(AF_PACKET)";
  return ENOTSUP;
}
void UoaTap::Close() { table_.clear(); }
void UoaTap::Drain() {}
bool UoaTap::Fresh(const UoaAddress&, UoaAddress*) { return false; }
UoaTapStats UoaTap::Stats() { return stats_; }
int UoaModuleLookup(int, const UoaAddress&, uint16_t, UoaAddress*) { return ENOTSUP; }

#endif

}  // namespace toa
