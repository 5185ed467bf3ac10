// The ACK tap: an AF_PACKET socket that sees the handshake ACK and first data packets of
// connections to the server's listening ports, and a bounded table 4-tuple -> TCP options where a
// TOA may sit. No N-API here (tap_addon.cc is the glue), so the table can be tested and fuzzed
// on its own. Linux only; elsewhere Open() answers ENOTSUP.
#ifndef NODE_TOA_TAP_H
#define NODE_TOA_TAP_H

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "toa_parse.h"

namespace toa {

// The connection a packet belongs to, as the server sees it. IPv4-mapped IPv6 addresses are
// stored as IPv4, so a dual-stack socket finds the IPv4 packets of its connection.
struct TupleKey {
  uint8_t family = 0;  // 4 or 6
  uint8_t src[16] = {};
  uint8_t dst[16] = {};
  uint16_t sport = 0;
  uint16_t dport = 0;
  bool operator==(const TupleKey& o) const;
};

struct TupleHash {
  uint64_t seed = 0;  // random per table: forged tuples cannot aim at one bucket
  size_t operator()(const TupleKey& k) const;
};

struct TapCounters {
  uint64_t packets = 0;     // packets that passed the filter and were read
  uint64_t syns = 0;        // SYNs among them (each starts a fresh entry for its tuple)
  uint64_t toa_found = 0;   // accepted packets holding a TOA-shaped option under the kind table of the time
  uint64_t unmatched = 0;   // packets with options on a tuple whose SYN was not seen
  uint64_t bad_seq = 0;     // packets whose sequence number is not the SYN's + 1
  uint64_t inserted = 0;    // entries created (one per SYN)
  uint64_t evictions = 0;   // live entries pushed out by capacity (oldest first)
  uint64_t expired = 0;     // live entries dropped for age
  uint64_t lookups = 0;
  uint64_t hits = 0;
  uint64_t drops = 0;       // packets the kernel dropped because the tap's buffer was full
  uint64_t malformed = 0;   // passed the filter but did not parse as TCP
};

// What a lookup found: the TOA-shaped options of the packet that carried them, its IP source,
// and whether it was the handshake ACK or a packet with data.
struct TapHit {
  Address peer;
  ToaOptionList options;
  bool data = false;
};

// 4-tuple -> the TCP options of the first packet after the SYN that may hold a TOA. A SYN makes
// the entry and fixes the sequence number that packet must carry (the SYN's + 1: the handshake
// ACK and the first data byte both have it), so a packet forged by someone who did not see the
// SYN is refused, as TCP itself would refuse it. Options are kept raw and parsed at lookup with
// the caller's kind table, so kinds configured after the packet arrived still count. Capacity
// and age bound the table; the oldest entry goes first.
class TupleTable {
 public:
  static constexpr size_t kMaxOptions = 40;

  TupleTable(size_t capacity, uint64_t max_age_ms);

  // Feeds one packet (starting at the IP header). `kind_table` decides whether a packet's options
  // hold a TOA (a later packet with one replaces an earlier entry without one). Returns whether
  // the packet parsed as TCP.
  bool Offer(const uint8_t* data, size_t length, const uint8_t* kind_table, uint64_t now_ms);

  // Finds and consumes the entry of (peer -> local). A hit needs a TOA under `kind_table`.
  bool Take(const Address& peer, const Address& local, const uint8_t* kind_table, uint64_t now_ms,
            TapHit* out);

  size_t size() const { return index_.size(); }
  size_t capacity() const { return capacity_; }
  TapCounters& counters() { return counters_; }
  const TapCounters& counters() const { return counters_; }

 private:
  struct Slot {
    TupleKey key;
    uint64_t time_ms = 0;
    bool live = false;
    bool has_toa = false;  // a TOA-shaped option under the kind table of the time it arrived
    bool data = false;     // the kept packet carried payload (else: the handshake ACK)
    uint32_t next_seq = 0;  // the SYN's sequence number + 1 (+ data in the SYN)
    uint8_t options_length = 0;  // 0: the SYN only, nothing after it yet
    uint8_t options[kMaxOptions] = {};
  };

  void Expire(uint64_t now_ms);
  void Kill(uint32_t slot);
  uint32_t Append();

  size_t capacity_;
  std::vector<Slot> slots_;  // a ring in arrival order: head_ is the oldest
  size_t head_ = 0;
  size_t used_ = 0;          // slots between head_ and the tail, live or consumed
  uint64_t max_age_ms_;
  std::unordered_map<TupleKey, uint32_t, TupleHash> index_;
  TapCounters counters_;
};

// Normalises ::ffff:a.b.c.d to IPv4 (what the packet parser does for packets).
Address Unmapped(const Address& a);

struct TapOptions {
  size_t capacity = 65536;
  uint64_t max_age_ms = 30000;
  int receive_buffer = 4 << 20;
  // Frames of the mmap'd receive ring of each socket (PACKET_RX_RING); 0: no ring, recvmmsg.
  // With a ring, finding the queue empty (most lookups) is a memory read, not a syscall.
  uint32_t ring_frames = 4096;
};

// The packet sockets (one for IPv4, one for IPv6) plus the table.
class Tap {
 public:
  explicit Tap(const TapOptions& options);
  ~Tap();
  Tap(const Tap&) = delete;
  Tap& operator=(const Tap&) = delete;

  // Opens the packet sockets in the network namespace of `listener_fd` (the process's own when
  // listener_fd < 0). Returns 0 or an errno; *failed_call names the call that failed.
  int Open(int listener_fd, const char** failed_call);

  // Attaches a filter that passes, to these ports only, SYNs and packets whose TCP options are
  // more than a lone timestamp. An empty list passes nothing. Each socket's filter also passes
  // only its own protocol: the sockets are bound to ETH_P_ALL.
  int SetPorts(const std::vector<uint16_t>& ports);

  // Reads what is queued (non-blocking, at most `max_packets`) on the socket of `family` (4 or
  // 6), or on both (0). Returns the packets read.
  size_t Drain(const uint8_t* kind_table, size_t max_packets, int family = 0);

  // Looks up the connection of accepted socket `fd`, after reading what is queued for its family.
  // `peer` is the client end when the caller knows it from the saved SYN (its IP source: right
  // even when a vendor module rewrites getpeername), else null and getpeername is asked.
  // Returns 0 (see *found) or the errno of getpeername/getsockname.
  int Lookup(int fd, const uint8_t* kind_table, const Address* peer, bool* found, TapHit* out);

  // Reads and adds the kernel's drop count (PACKET_STATISTICS resets on each read).
  void UpdateDrops();

  void Close();
  bool open() const { return fds_[0] >= 0 || fds_[1] >= 0; }
  uint64_t netns() const { return netns_; }
  // Whether the sockets read through mmap'd rings (else recvmmsg).
  bool ring() const { return rings_[0].base != nullptr; }
  TupleTable& table() { return table_; }

 private:
  struct Ring {
    uint8_t* base = nullptr;
    size_t size = 0;
    uint32_t frames = 0;
    uint32_t next = 0;  // the frame to read next
  };
  int SetUpRing(int i);
  size_t DrainRing(int i, const uint8_t* kind_table, size_t max_packets);
  size_t DrainSocket(int i, const uint8_t* kind_table, size_t max_packets);

  int fds_[2] = {-1, -1};
  Ring rings_[2];
  uint64_t netns_ = 0;
  int receive_buffer_;
  uint32_t ring_frames_;
  TupleTable table_;
  std::vector<uint8_t> buffers_;
};

// Whether this build has packet taps (Linux).
bool TapSupported();

// Can this process open a packet socket in its own namespace? 0, or the errno (EPERM without
// CAP_NET_RAW).
int ProbePacketSocket();

uint64_t MonotonicMs();

// One classic BPF instruction, laid out as Linux's struct sock_filter.
struct BpfInsn {
  uint16_t code;
  uint8_t jt;
  uint8_t jf;
  uint32_t k;
};

// Conditional jumps reach 255 instructions, which bounds the port list of one filter.
constexpr size_t kMaxTapPorts = 200;
// Bytes of each packet copied to user space: IPv4 (60) or IPv6 (40) header plus a TCP header (60).
constexpr uint32_t kTapSnapLength = 128;

// The classic BPF program Tap::SetPorts attaches to the socket of `family` (4 or 6); empty off
// Linux or for too many ports.
std::vector<BpfInsn> BuildFilter(const std::vector<uint16_t>& ports, int family);

}  // namespace toa

#endif  // NODE_TOA_TAP_H
