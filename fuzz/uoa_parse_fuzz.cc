// libFuzzer target for DPVS's UOA packet parser (native/uoa_parse.h), built by scripts/fuzz.sh
// through CMakeLists.txt TOA_FUZZ=ON. Besides ASan and UBSan findings it checks the parser's
// promises: a client only from a UDP packet (IP-option mode, IPv4) or a protocol-248 one; the
// client is the option's bytes; the ports are the UDP header's; and the option walk, given the
// packet's own options, agrees with the packet parse.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "../native/uoa_parse.h"

namespace {

void Check(bool condition) {
  if (!condition) std::abort();
}

uint16_t U16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

// Where the client's bytes are in an option found at `o`: they must equal what was reported.
void CheckOptionBytes(const uint8_t* o, const toa::UoaAddress& client) {
  Check(o[0] == toa::kUoaOptionType);
  Check(o[1] == (client.ipv6 ? toa::kUoaLengthIpv6 : toa::kUoaLengthIpv4));
  Check(client.port == U16(o + 2));
  Check(std::memcmp(client.bytes, o + 4, client.ipv6 ? 16 : 4) == 0);
}

void Run(const uint8_t* data, size_t len) {
  std::vector<uint8_t> copy(data, data + len);
  const uint8_t* d = copy.empty() ? nullptr : copy.data();
  toa::UoaPacket p;
  toa::ParseUoaPacket(d, len, &p);
  Check(p.status <= toa::kUoaMalformed);
  if (p.has_client) Check(p.status == toa::kUoaFound || p.status == toa::kUoaPrivate);
  if (p.status == toa::kUoaNotUdp) {
    Check(!p.has_client);
    return;
  }
  const bool v4 = (d[0] >> 4) == 4;
  if (p.status == toa::kUoaFound) Check(v4 && d[9] == toa::kIpProtoUdp);
  if (v4) {
    const size_t ihl = static_cast<size_t>(d[0] & 0x0f) * 4;
    Check(ihl >= 20 && ihl <= len);
    if (d[9] == toa::kIpProtoUdp) {
      // The option walk over the packet's own options says the same.
      toa::UoaAddress client;
      const toa::UoaPacketStatus s = toa::FindUoaOption(d + 20, ihl - 20, &client);
      Check(s == p.status);
      Check(ihl + 8 <= len);
      Check(p.source.port == U16(d + ihl) && p.destination.port == U16(d + ihl + 2));
      Check(p.payload_length + 8u == U16(d + ihl + 4));
      if (p.has_client) {
        // Find the option again by walking, and compare its bytes.
        size_t i = 20;
        while (i < ihl && d[i] != toa::kUoaOptionType) i += (d[i] == 1) ? 1 : d[i + 1];
        CheckOptionBytes(d + i, p.client);
      }
    } else {
      Check(d[9] == toa::kIpProtoUoa);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Run(data, size);
  // The option walk alone, on the raw input: a client only from a whole option of its own bytes.
  toa::UoaAddress client;
  std::vector<uint8_t> copy(data, data + size);
  if (toa::FindUoaOption(copy.empty() ? nullptr : copy.data(), size, &client) == toa::kUoaFound) {
    const size_t width = client.ipv6 ? 16 : 4;
    Check(size >= 4 + width);
  }
  return 0;
}
