#include "spp_parse.h"

#include <cstring>

namespace toa {

namespace {

const uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

void ReadEndpoint(const uint8_t* address, const uint8_t* port, SppEndpoint* out) {
  std::memcpy(out->bytes, address, 16);
  out->ipv4 = std::memcmp(address, kMappedPrefix, sizeof kMappedPrefix) == 0;
  out->port = static_cast<uint16_t>((port[0] << 8) | port[1]);
}

bool Unspecified(const SppEndpoint& e) {
  static const uint8_t kZero[16] = {};
  if (e.ipv4) return std::memcmp(e.bytes + 12, kZero, 4) == 0;
  return std::memcmp(e.bytes, kZero, 16) == 0;
}

}  // namespace

void ParseSpp(const uint8_t* data, size_t len, SppHeader* out) {
  *out = SppHeader();
  if (data == nullptr || len < 2 || data[0] != kSppMagic0 || data[1] != kSppMagic1) return;
  if (len < kSppLength) {
    out->status = kSppTruncated;
    return;
  }
  ReadEndpoint(data + 2, data + 34, &out->client);
  ReadEndpoint(data + 18, data + 36, &out->proxy);
  out->status = Unspecified(out->client) ? kSppNoClient : kSppOk;
}

const char* SppStatusText(SppStatus status) {
  switch (status) {
    case kSppTruncated:
      return "SPP header cut short";
    case kSppNoClient:
      return "SPP header without a client address";
    default:
      return "";
  }
}

}  // namespace toa
