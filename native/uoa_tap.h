// DPVS UOA without the kernel module: a packet tap (AF_PACKET, SOCK_DGRAM, ETH_P_ALL so it sees a
// datagram before the UDP socket does, classic BPF so only IPv4 UDP packets with options to one
// port, and protocol-248 packets, reach user space) and a bounded table of what the options said,
// per proxy end (source address and port). And, with DPVS's uoa.ko loaded, its getsockopt. No
// N-API here (udp_addon.cc is the glue); the packet parser is uoa_parse.h.
#ifndef NODE_TOA_UOA_TAP_H
#define NODE_TOA_UOA_TAP_H

#include <array>
#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "uoa_parse.h"

namespace toa {

struct UoaTapStats {
  uint64_t packets = 0;   // packets read from the tap
  uint64_t found = 0;     // with a usable UOA (either mode)
  uint64_t private_protocol = 0;  // protocol-248 packets (they reach no UDP socket without uoa.ko)
  uint64_t malformed = 0;
  uint64_t evictions = 0;  // entries dropped for room
  uint64_t drops = 0;      // packets the kernel dropped (the tap's receive buffer was full)
};

class UoaTap {
 public:
  UoaTap(size_t capacity, uint64_t max_age_ms);
  ~UoaTap();
  UoaTap(const UoaTap&) = delete;
  UoaTap& operator=(const UoaTap&) = delete;

  // Opens the tap for UDP port `port` (0: any port) in the calling thread's network namespace.
  // Returns an errno; `failed_call` names the call that failed.
  int Open(uint16_t port, int receive_buffer, const char** failed_call);
  void Close();
  bool open() const { return fd_ >= 0; }

  // Reads what the tap has received, then: the client the newest UOA for the proxy end `source`
  // named, if one arrived since the last call for that end (it is consumed). False otherwise.
  bool Fresh(const UoaAddress& source, UoaAddress* client);

  // Reads what the tap has received (bounded); for tests and the doctor.
  void Drain();
  UoaTapStats Stats();
  size_t size() const { return table_.size(); }

 private:
  using Key = std::array<uint8_t, 19>;  // 16 address bytes, family, port
  struct KeyHash {
    size_t operator()(const Key& k) const;
  };
  struct Entry {
    UoaAddress client;
    uint64_t seen_ms = 0;
    bool fresh = false;
  };
  static Key KeyOf(const UoaAddress& source);
  void Insert(const UoaPacket& packet, uint64_t now);

  int fd_ = -1;
  uint16_t port_ = 0;
  size_t capacity_;
  uint64_t max_age_ms_;
  std::unordered_map<Key, Entry, KeyHash> table_;
  std::vector<uint8_t> buffer_;
  UoaTapStats stats_;
};

// Whether packet taps exist here (Linux).
bool UoaTapSupported();

// DPVS uoa.ko's UOA_SO_GET_LOOKUP (getsockopt(fd, IPPROTO_IP, 2048) with the packed 58-byte
// uoa_param_map): the client of datagrams from `source` to `local_port` on the UDP socket `fd`.
// Returns an errno (ENOENT: no mapping; ENOPROTOOPT: the module is not loaded).
int UoaModuleLookup(int fd, const UoaAddress& source, uint16_t local_port, UoaAddress* client);

}  // namespace toa

#endif  // NODE_TOA_UOA_TAP_H
