// libFuzzer target for the UDP datagram header decision (native/dgram_header.h over spp_parse.h and
// proxy_parse.h), built by scripts/fuzz.sh through CMakeLists.txt TOA_FUZZ=ON. Besides ASan and
// UBSan findings it checks the promises lib/udp/ relies on: a header lies inside the datagram and
// is what its bytes say (the SPP magic and fields, a v2 DGRAM header's length field); only an
// enabled format is ever reported; a refusal always has a reason and nothing else does; and what
// follows a whole header changes nothing about it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "../native/dgram_header.h"
#include "../native/spp_parse.h"

namespace {

void Check(bool condition) {
  if (!condition) std::abort();
}

const uint8_t kSignature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

uint16_t ReadU16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

// Parses a copy of exactly `len` bytes, so a read past them is caught.
toa::DgramHeader Parse(const uint8_t* data, size_t len, uint8_t formats, size_t max_size) {
  std::vector<uint8_t> copy(data, data + len);
  toa::DgramHeader h;
  toa::ParseDgramHeader(copy.empty() ? nullptr : copy.data(), len, formats, max_size, &h);
  return h;
}

bool Same(const toa::DgramHeader& a, const toa::DgramHeader& b) {
  return a.kind == b.kind && a.reason == b.reason && a.proxy_reason == b.proxy_reason && a.length == b.length &&
         std::memcmp(&a.client, &b.client, sizeof a.client) == 0 && std::memcmp(&a.other, &b.other, sizeof a.other) == 0;
}

// The SPP endpoint at `address` / `port` as the parser reports it.
void CheckSppEndpoint(const uint8_t* address, const uint8_t* port, const toa::DgramEndpoint& e) {
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  const bool v4 = std::memcmp(address, kMapped, 12) == 0;
  Check(e.ipv6 == !v4);
  Check(std::memcmp(e.bytes, v4 ? address + 12 : address, v4 ? 4 : 16) == 0);
  Check(e.port == ReadU16(port));
}

void Run(const uint8_t* data, size_t len, uint8_t formats, size_t max_size) {
  const toa::DgramHeader h = Parse(data, len, formats, max_size);
  Check(h.kind <= toa::kDgramTooLarge);
  const bool refused = h.kind == toa::kDgramMalformed || h.kind == toa::kDgramTooLarge;
  Check((h.reason != toa::kDgramReasonNone) == refused);
  Check(h.reason < toa::kDgramReasonCount && toa::DgramReasonText(h) != nullptr);
  if (refused) Check(toa::DgramReasonText(h)[0] != '\0');
  const bool v2 = len >= 12 && std::memcmp(data, kSignature, 12) == 0;
  const bool magic = len >= 2 && data[0] == toa::kSppMagic0 && data[1] == toa::kSppMagic1;
  const bool pp_on = (formats & toa::kDgramFormatProxy) != 0;
  const bool spp_on = (formats & toa::kDgramFormatSpp) != 0;
  switch (h.kind) {
    case toa::kDgramNone:
      Check(!(pp_on && v2) && !(spp_on && magic));
      Check(h.length == 0);
      return;
    case toa::kDgramSpp:
      Check(spp_on && magic && !(pp_on && v2));
      Check(h.length == toa::kSppLength && len >= toa::kSppLength);
      CheckSppEndpoint(data + 2, data + 34, h.client);
      CheckSppEndpoint(data + 18, data + 36, h.other);
      break;
    case toa::kDgramProxy:
    case toa::kDgramProxyLocal:
      Check(pp_on && v2);
      Check(h.length <= len && h.length <= (max_size < 16 ? 16 : max_size) && h.length == 16u + ReadU16(data + 14));
      if (h.kind == toa::kDgramProxy) {
        Check((data[12] & 0x0f) == 1 && (data[13] & 0x0f) == 2);
        const bool six = (data[13] >> 4) == 2;
        Check(h.client.ipv6 == six && std::memcmp(h.client.bytes, data + 16, six ? 16 : 4) == 0);
        Check(h.client.port == ReadU16(data + 16 + (six ? 32 : 8)));
      }
      break;
    default:
      Check((spp_on && magic) || (pp_on && v2));
      Check(h.length == 0);
      return;
  }
  // Whole headers: what follows them changes nothing.
  std::vector<uint8_t> extended(data, data + len);
  extended.push_back(static_cast<uint8_t>(~(len > 0 ? data[len - 1] : 0)));
  extended.insert(extended.end(), data, data + (len < 64 ? len : 64));
  Check(Same(Parse(extended.data(), extended.size(), formats, max_size), h));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Byte 0 picks the formats and, with byte 1, a max_size; the rest is the datagram. Every input
  // is also tried whole with both formats on and no bound.
  Run(data, size, toa::kDgramFormatSpp | toa::kDgramFormatProxy, toa::kProxyV2MaxLength);
  if (size >= 2) {
    const uint8_t formats = data[0] & 3;
    const size_t max_size = static_cast<size_t>(data[1]) * 4;
    Run(data + 2, size - 2, formats, max_size);
  }
  return 0;
}
