// The ACK tap's packet sockets: AF_PACKET sockets in the listening socket's network namespace
// that see the handshake ACK and first data packets of connections to the server's ports, read
// through mmap'd rings (or recvmmsg) into the table (tap_table.h), which they own. The syscalls,
// no N-API (tap_addon.cc is the glue). Linux only; elsewhere Open() answers ENOTSUP.
#ifndef NODE_TOA_TAP_SOCKETS_H
#define NODE_TOA_TAP_SOCKETS_H

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tap_filter.h"
#include "tap_table.h"
#include "toa_parse.h"

namespace toa {

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

// The clock of the table's ages (CLOCK_MONOTONIC_COARSE on Linux: a vDSO read, no syscall).
uint64_t MonotonicMs();

}  // namespace toa

#endif  // NODE_TOA_TAP_SOCKETS_H
