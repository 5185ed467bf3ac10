// What a datagram from a trusted proxy starts with: an SPP header (spp_parse.h), a PROXY protocol
// v2 header (proxy_parse.h, transport DGRAM), or neither. One decision over both parsers, with no
// N-API, so the glue (udp_addon.cc) stays a conversion and the fuzzer (fuzz/dgram_header_fuzz.cc)
// reaches every branch. Policy (trust, flows, what to drop) lives in TypeScript (lib/udp/).
//
// A datagram is whole: a header is never "incomplete" here, a cut one is malformed. Only the v2
// binary form is looked for (v1 is TCP only): its 12-byte signature decides, so application data
// that merely starts with CR LF is data.
#ifndef NODE_TOA_DGRAM_HEADER_H
#define NODE_TOA_DGRAM_HEADER_H

#include <cstddef>
#include <cstdint>

#include "proxy_parse.h"

namespace toa {

// Which headers to look for (bits).
constexpr uint8_t kDgramFormatSpp = 1;
constexpr uint8_t kDgramFormatProxy = 2;

enum DgramKind : uint8_t {
  kDgramNone = 0,       // no header of an enabled format: the datagram is all payload
  kDgramSpp = 1,        // an SPP header: client and proxy set, length 38
  kDgramProxy = 2,      // a PROXY v2 header with a client (PROXY, IPv4/IPv6, DGRAM): client and destination set
  kDgramProxyLocal = 3, // a whole PROXY v2 header naming no client (LOCAL, UNSPEC, AF_UNIX): `length` bytes to drop
  kDgramMalformed = 4,  // a header of an enabled format, broken or cut short: see `reason`
  kDgramTooLarge = 5,   // a PROXY v2 header longer than max_size
};

enum DgramReason : uint8_t {
  kDgramReasonNone = 0,
  kDgramReasonSppTruncated,
  kDgramReasonSppNoClient,
  kDgramReasonProxyCut,       // the v2 length runs past the datagram
  kDgramReasonProxyStream,    // a v2 PROXY header for a TCP (STREAM) connection, in a datagram
  kDgramReasonProxyNoClient,  // a v2 PROXY header whose source address is unspecified
  kDgramReasonProxy,          // the PROXY parser's reason: `proxy_reason`
  kDgramReasonCount,
};

struct DgramEndpoint {
  uint8_t bytes[16] = {};  // IPv4 in the first 4
  bool ipv6 = false;
  uint16_t port = 0;
};

struct DgramHeader {
  DgramKind kind = kDgramNone;
  DgramReason reason = kDgramReasonNone;
  ProxyReason proxy_reason = kReasonNone;
  uint32_t length = 0;     // bytes the header takes (kDgramSpp, kDgramProxy, kDgramProxyLocal)
  DgramEndpoint client;    // kDgramSpp, kDgramProxy
  DgramEndpoint other;     // SPP: the proxy address field; PROXY: the destination
};

// Reads the header at the start of the datagram data[0, len). `formats`: kDgramFormat* bits.
// max_size bounds a PROXY v2 header (>= 16; the parser's own bound applies above it).
void ParseDgramHeader(const uint8_t* data, size_t len, uint8_t formats, size_t max_size, DgramHeader* out);

// Short static English text for a header's reason ("" for none).
const char* DgramReasonText(const DgramHeader& header);

}  // namespace toa

#endif  // NODE_TOA_DGRAM_HEADER_H
