// The classic BPF program of the ACK tap's packet sockets: which packets the kernel copies to user
// space at all. Built here as plain instructions (no syscalls), attached by tap_sockets.cc.
#ifndef NODE_TOA_TAP_FILTER_H
#define NODE_TOA_TAP_FILTER_H

#include <cstddef>
#include <cstdint>
#include <vector>

namespace toa {

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

// The program Tap::SetPorts attaches to the socket of `family` (4 or 6); empty off Linux or for
// too many ports.
std::vector<BpfInsn> BuildFilter(const std::vector<uint16_t>& ports, int family);

}  // namespace toa

#endif  // NODE_TOA_TAP_FILTER_H
