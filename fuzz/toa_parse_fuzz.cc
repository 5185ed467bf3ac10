// libFuzzer target for the TOA parser (built by scripts/fuzz.sh through CMakeLists.txt TOA_FUZZ=ON).
// Besides memory errors (ASan) and undefined behaviour (UBSan), it checks the parser's promises:
// every listed option is of a configured kind and layout and really sits in the input, its status
// matches its bytes (an unspecified client is never usable, a TFO cookie only in a SYN), and the
// packet's lengths stay inside the buffer.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "../native/toa_parse.h"

namespace {

struct Tables {
  uint8_t defaults[toa::kKindTableSize];
  uint8_t all_layouts[toa::kKindTableSize];
  Tables() {
    toa::DefaultKindTable(defaults);
    // Every kind, every layout: reaches each decoder from any option (len 20 then reads as IPv6).
    std::memset(all_layouts,
                toa::kLayoutPortIPv4 | toa::kLayoutPortIPv6 | toa::kLayoutAliCdn | toa::kLayoutVtoa |
                    toa::kLayoutAliDdos,
                sizeof all_layouts);
  }
};

void Check(bool condition) {
  if (!condition) std::abort();
}

bool Contains(const uint8_t* data, size_t size, const uint8_t* needle, size_t needle_size) {
  if (needle_size > size) return false;
  for (size_t i = 0; i + needle_size <= size; i++) {
    if (std::memcmp(data + i, needle, needle_size) == 0) return true;
  }
  return false;
}

void CheckOption(const toa::ToaOption& t, const uint8_t* data, size_t size, const uint8_t* table,
                 bool syn) {
  Check((table[t.kind] & t.layout) != 0);
  Check(t.layout == toa::kLayoutPortIPv4 || t.layout == toa::kLayoutPortIPv6 ||
        t.layout == toa::kLayoutAliCdn || t.layout == toa::kLayoutVtoa ||
        t.layout == toa::kLayoutAliDdos);
  Check(t.length == 7 || t.length == 8 || t.length == 19 || t.length == 20 || t.length == 40);
  Check((t.length == 40) == (t.layout == toa::kLayoutAliDdos));
  Check(t.client.family == 4 || t.client.family == 6);
  Check(t.status <= toa::kOptionBadVersion);
  // The TFO cookie is recognised in SYNs only: elsewhere F9 89 is a port.
  Check(t.status != toa::kOptionTfoCookie || syn);
  bool zero = true;
  for (size_t i = 0; i < (t.client.family == 4 ? 4u : 16u); i++) zero = zero && t.client.bytes[i] == 0;
  // Usable means a client; unspecified means none (a cookie or a bad version may be zeros too).
  if (t.status == toa::kOptionUsable) Check(!zero);
  if (t.status == toa::kOptionUnspecified) Check(zero);
  // The option's kind and length bytes, followed by the port (or Alibaba CDN's version byte).
  uint8_t head[4] = {t.kind, t.length, static_cast<uint8_t>(t.client.port >> 8),
                     static_cast<uint8_t>(t.client.port & 0xff)};
  size_t head_size = 4;
  if (t.layout == toa::kLayoutAliCdn) head_size = 2;
  Check(Contains(data, size, head, head_size));
  if (t.client.family == 4) Check(Contains(data, size, t.client.bytes, 4));
  if (t.client.family == 6) Check(Contains(data, size, t.client.bytes, 16));
}

void CheckList(const toa::ToaOptionList& list, const uint8_t* data, size_t size, const uint8_t* table,
               bool syn) {
  Check(list.count <= toa::kMaxToaOptions);
  for (size_t i = 0; i < list.count; i++) CheckOption(list.options[i], data, size, table, syn);
}

void Run(const uint8_t* data, size_t size, const uint8_t* table) {
  const toa::Packet p = toa::ParsePacket(data, size, table);
  if (p.ok) {
    // Families may differ from the IP version: ::ffff:a.b.c.d in an IPv6 header reads as IPv4.
    Check(p.src.family == 4 || p.src.family == 6);
    Check(p.dst.family == 4 || p.dst.family == 6);
    const int version = data[0] >> 4;
    Check(version == 4 || version == 6);
    Check(size >= (version == 4 ? 40u : 60u) + p.payload_length);
  } else {
    Check(p.toa.count == 0);
  }
  CheckList(p.toa, data, size, table, (p.tcp_flags & toa::kTcpSyn) != 0);

  // The option walk on its own, on the raw bytes, as a SYN and as any other packet: the same
  // options in the same order, only the TFO cookie's status differs.
  toa::ToaOptionList as_syn, as_ack;
  toa::FindToaOptions(data, size, table, true, &as_syn);
  toa::FindToaOptions(data, size, table, false, &as_ack);
  CheckList(as_syn, data, size, table, true);
  CheckList(as_ack, data, size, table, false);
  Check(as_syn.count == as_ack.count);
  for (size_t i = 0; i < as_syn.count; i++) {
    Check(as_syn.options[i].kind == as_ack.options[i].kind);
    Check(as_syn.options[i].length == as_ack.options[i].length);
    Check(as_syn.options[i].client.port == as_ack.options[i].client.port);
    Check(as_syn.options[i].status == as_ack.options[i].status ||
          as_syn.options[i].status == toa::kOptionTfoCookie);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Tables tables;
  Run(data, size, tables.defaults);
  Run(data, size, tables.all_layouts);
  // A table chosen by the input: byte 0 is a kind, the low 5 bits of byte 1 its layouts, on top of
  // the defaults (this reaches the VTOA decoder, which 'all layouts' shadows with IPv6). The rest
  // is the packet. Copied so that a read past the shorter buffer is still caught.
  if (size >= 2) {
    uint8_t chosen[toa::kKindTableSize];
    toa::DefaultKindTable(chosen);
    chosen[data[0]] = data[1] & 0x1f;
    const size_t rest_size = size - 2;
    uint8_t* rest = static_cast<uint8_t*>(std::malloc(rest_size ? rest_size : 1));
    std::memcpy(rest, data + 2, rest_size);
    Run(rest, rest_size, chosen);
    std::free(rest);
  }
  return 0;
}
