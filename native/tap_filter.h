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

// A source range the filter passes: the trusted proxies, compiled from the same `trustProxy` the
// resolver believes (lib/tap/sources.ts), so packets from anyone else never reach user space.
struct SourceRange {
  uint8_t family = 0;  // 4 or 6
  uint8_t prefix = 0;  // bits: 0-32 or 0-128
  uint8_t bytes[16] = {};
};

// Ranges one filter can check; more, and the caller filters by port only.
constexpr size_t kMaxTapSources = 64;

// What a socket's filter passes.
struct FilterSpec {
  std::vector<uint16_t> ports;
  // Whether to check the source at all (`trustProxy` a function or `true`: every source).
  bool check_sources = false;
  std::vector<SourceRange> sources;  // of both families; each socket's filter takes its own
};

// The program Tap::SetFilter attaches to the socket of `family` (4 or 6); empty off Linux, for too
// many ports or ranges, or a program longer than the kernel takes.
std::vector<BpfInsn> BuildFilter(const FilterSpec& spec, int family);

}  // namespace toa

#endif  // NODE_TOA_TAP_FILTER_H
