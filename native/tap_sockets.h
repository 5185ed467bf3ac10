// The ACK tap's packet sockets: AF_PACKET sockets in the listening socket's network namespace
// that see the handshake ACK and first data packets of connections to the server's ports, read
// through mmap'd rings (or recvmmsg) into the table (tap_table.h), which they own. The syscalls,
// no N-API (tap_addon.cc is the glue). Linux only; elsewhere Open() answers ENOTSUP.
#ifndef NODE_TOA_TAP_SOCKETS_H
#define NODE_TOA_TAP_SOCKETS_H

#include <cstddef>
#include <cstdint>
#include <string>
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

  // Attaches the filter of `spec` (tap_filter.h) to both sockets. No ports pass nothing. Returns
  // 0 or an errno (E2BIG: more ports or source ranges than one program holds).
  int SetFilter(const FilterSpec& spec);

  // Reads what is queued (non-blocking, at most `max_packets`) on the socket of `family` (4 or
  // 6), or on both (0). Returns the packets read.
  size_t Drain(const uint8_t* kind_table, size_t max_packets, int family = 0);

  // Looks up the connection of an accepted socket: with packet sockets after reading what is
  // queued for its family; through the sock_ops program in its slot or socket storage.
  // `syn` is its saved SYN when the kernel had one: its source and destination are the
  // connection's ends (the source is right even when a vendor module rewrites getpeername) and its
  // sequence number names the packet to take, so no syscall is made. Without it (syncookies, a
  // listener without TCP_SAVE_SYN) getpeername and getsockname of `fd` are asked. Returns 0 (see
  // out->found, out->syn_found) or the errno of getpeername/getsockname.
  int Claim(int fd, const Packet* syn, const uint8_t* kind_table, TapHit* out);

  // Reads and adds the kernel's drop count (PACKET_STATISTICS resets on each read); any drop is a
  // loss for the table (TupleTable::NoteLoss).
  void UpdateDrops();

  // Reads through the server's sock_ops program instead of packet sockets (sockops.h): the
  // connection's packets come from its socket storage, by descriptor, in the lookup's one system
  // call; nothing is queued, drained or matched. `listener_fd` (or -1) names the namespace
  // netns() reports; `trust`'s sources are the senders whose syncookie SYNs the program keeps.
  // Returns 0 or an errno; *failed_call names the step that failed, *log the verifier's words
  // when the kernel refused the program.
  int OpenSockops(int listener_fd, uint16_t port, const FilterSpec& trust, const char** failed_call, std::string* log);
  // The port this tap watches through the sock_ops program; 0 when it reads packet sockets.
  uint16_t sockops_port() const { return sockops_port_; }

  void Close();
  bool open() const { return fds_[0] >= 0 || fds_[1] >= 0 || sockops_port_ != 0; }
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
  int ClaimSockops(int fd, const Packet* syn, const uint8_t* kind_table, TapHit* out);
  bool KeptNothingOf(int fd, const Packet* syn, TapHit* out) const;
  size_t DrainRing(int i, const uint8_t* kind_table, size_t max_packets);
  size_t DrainSocket(int i, const uint8_t* kind_table, size_t max_packets);

  int fds_[2] = {-1, -1};
  Ring rings_[2];
  // The kernel reported drops on this socket since it was last drained (UpdateDrops).
  bool loss_pending_[2] = {false, false};
  uint64_t netns_ = 0;
  uint16_t sockops_port_ = 0;
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
