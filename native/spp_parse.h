// Cloudflare's Simple Proxy Protocol (SPP) header, as Spectrum and Tencent Cloud EdgeOne L4 put it
// before every proxied UDP datagram: 38 bytes, network order, magic 0x56EC, client address (16),
// proxy address (16), client port, proxy port; IPv4 as IPv4-mapped IPv6. Plain bytes in, a struct
// out: no N-API, no allocation, every read bounds-checked, fuzzed alone (fuzz/spp_parse_fuzz.cc).
#ifndef NODE_TOA_SPP_PARSE_H
#define NODE_TOA_SPP_PARSE_H

#include <cstddef>
#include <cstdint>

namespace toa {

constexpr size_t kSppLength = 38;
constexpr uint8_t kSppMagic0 = 0x56;
constexpr uint8_t kSppMagic1 = 0xEC;

enum SppStatus : uint8_t {
  kSppOk = 0,          // a whole header: kSppLength bytes, then the payload
  kSppNotSpp = 1,      // fewer than 2 bytes, or not the magic: no SPP header here
  kSppTruncated = 2,   // the magic, then fewer than 36 more bytes
  kSppNoClient = 3,    // a whole header whose client address is unspecified (:: or ::ffff:0.0.0.0)
};

struct SppEndpoint {
  uint8_t bytes[16] = {};  // the IPv6 address as sent (IPv4-mapped for an IPv4 one)
  bool ipv4 = false;       // bytes is ::ffff:a.b.c.d; the IPv4 address is bytes[12..16)
  uint16_t port = 0;
};

struct SppHeader {
  SppStatus status = kSppNotSpp;
  SppEndpoint client;  // set for kSppOk and kSppNoClient
  SppEndpoint proxy;
};

// Reads the SPP header at the start of data[0, len).
void ParseSpp(const uint8_t* data, size_t len, SppHeader* out);

// Short English text for a status other than kSppOk / kSppNotSpp ("" for those).
const char* SppStatusText(SppStatus status);

}  // namespace toa

#endif  // NODE_TOA_SPP_PARSE_H
