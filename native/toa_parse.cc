#include "toa_parse.h"

#include <cstring>

namespace toa {
namespace {

constexpr uint8_t kOptEol = 0;
constexpr uint8_t kOptNop = 1;
constexpr uint8_t kIpProtoTcp = 6;
// RFC 6994 shared experimental kinds; Linux's TFO cookie option uses them with ExID 0xF989.
constexpr uint8_t kExperimental1 = 253;
constexpr uint8_t kExperimental2 = 254;
// More extension headers than this in a SYN is an attack, not a proxy.
constexpr int kMaxIPv6ExtensionHeaders = 16;

uint16_t ReadU16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

uint32_t ReadU32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | static_cast<uint32_t>(p[3]);
}

void SetIPv4(Address* a, const uint8_t* bytes, uint16_t port) {
  a->family = 4;
  std::memset(a->bytes, 0, sizeof a->bytes);
  std::memcpy(a->bytes, bytes, 4);
  a->port = port;
}

// An IPv4 client carried in an IPv6 field (::ffff:a.b.c.d) is reported as IPv4.
void SetIPv6(Address* a, const uint8_t* bytes, uint16_t port) {
  static const uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(bytes, kMappedPrefix, sizeof kMappedPrefix) == 0) {
    SetIPv4(a, bytes + 12, port);
    return;
  }
  a->family = 6;
  std::memcpy(a->bytes, bytes, 16);
  a->port = port;
}

bool IsUnspecified(const Address& a) {
  const size_t n = a.family == 4 ? 4 : 16;
  for (size_t i = 0; i < n; i++) {
    if (a.bytes[i] != 0) return false;
  }
  return true;
}

// The layouts an option of `len` bytes may have.
uint8_t LayoutsOfLength(uint8_t len) {
  switch (len) {
    case 8:
      return kLayoutPortIPv4;
    case 20:
      return kLayoutPortIPv6 | kLayoutVtoa;
    case 7:
    case 19:
      return kLayoutAliCdn;
    case 40:  // the whole option space: such a packet carries no other option
      return kLayoutAliDdos;
    default:
      return 0;
  }
}

// `opt` points at the kind byte of an option of `len` bytes, all inside the buffer, whose length
// fits `layout` (one bit).
void DecodeOption(const uint8_t* opt, uint8_t len, uint8_t layout, bool syn, ToaOption* out) {
  ToaOption o;
  o.kind = opt[0];
  o.length = len;
  o.layout = layout;
  switch (layout) {
    case kLayoutPortIPv4:
      SetIPv4(&o.client, opt + 4, ReadU16(opt + 2));
      break;
    case kLayoutPortIPv6:
    case kLayoutAliDdos:  // the 20 bytes after the client describe the Anti-DDoS node: not read
      SetIPv6(&o.client, opt + 4, ReadU16(opt + 2));
      break;
    case kLayoutVtoa:
      SetIPv4(&o.client, opt + 4, ReadU16(opt + 2));
      o.vid = ReadU32(opt + 8);
      SetIPv4(&o.vip, opt + 12, ReadU16(opt + 16));
      break;
    default:  // kLayoutAliCdn
      if (len == 7) {
        SetIPv4(&o.client, opt + 3, 0);
      } else {
        SetIPv6(&o.client, opt + 3, 0);
      }
      if (opt[2] != 1) o.status = kOptionBadVersion;
      break;
  }
  if (syn && (o.kind == kExperimental1 || o.kind == kExperimental2) && opt[2] == 0xF9 &&
      opt[3] == 0x89) {
    o.status = kOptionTfoCookie;
  } else if (o.status == kOptionUsable && IsUnspecified(o.client)) {
    o.status = kOptionUnspecified;
  }
  *out = o;
}

// Returns the offset of the TCP header, or 0 when the packet is not a first-fragment TCP packet.
size_t ParseIPv4(const uint8_t* data, size_t length, Packet* p, size_t* end) {
  if (length < 20) return 0;
  const size_t ihl = static_cast<size_t>(data[0] & 0x0f) * 4;
  if (ihl < 20 || ihl > length) return 0;
  const size_t total = ReadU16(data + 2);
  if (total < ihl) return 0;
  if (data[9] != kIpProtoTcp) return 0;
  if ((ReadU16(data + 6) & 0x1fff) != 0) return 0;  // a later fragment has no TCP header
  SetIPv4(&p->src, data + 12, 0);
  SetIPv4(&p->dst, data + 16, 0);
  // TCP_SAVED_SYN holds headers only, so the IP total length may exceed what we were given.
  *end = total < length ? total : length;
  return ihl;
}

size_t ParseIPv6(const uint8_t* data, size_t length, Packet* p, size_t* end) {
  if (length < 40) return 0;
  uint8_t next = data[6];
  size_t offset = 40;
  for (int i = 0; next != kIpProtoTcp; i++) {
    if (i >= kMaxIPv6ExtensionHeaders || offset + 8 > length) return 0;
    const uint8_t* h = data + offset;
    size_t header_length;
    switch (next) {
      case 0:   // hop-by-hop
      case 43:  // routing
      case 60:  // destination options
        header_length = (static_cast<size_t>(h[1]) + 1) * 8;
        break;
      case 44:  // fragment
        if ((ReadU16(h + 2) & 0xfff8) != 0) return 0;
        header_length = 8;
        break;
      case 51:  // authentication header
        header_length = (static_cast<size_t>(h[1]) + 2) * 4;
        break;
      default:  // ESP, no-next-header, anything unknown
        return 0;
    }
    next = h[0];
    offset += header_length;
  }
  if (offset > length) return 0;
  SetIPv6(&p->src, data + 8, 0);
  SetIPv6(&p->dst, data + 24, 0);
  const size_t total = 40 + static_cast<size_t>(ReadU16(data + 4));
  *end = total < length ? total : length;
  return offset;
}

}  // namespace

void FindToaOptions(const uint8_t* options, size_t length, const uint8_t* kind_table, bool syn,
                    ToaOptionList* out) {
  out->count = 0;
  size_t i = 0;
  while (i < length) {
    const uint8_t kind = options[i];
    if (kind == kOptEol) break;
    if (kind == kOptNop) {
      i++;
      continue;
    }
    if (i + 1 >= length) break;
    const uint8_t len = options[i + 1];
    if (len < 2 || len > length - i) break;
    const uint8_t fits = kind_table[kind] & LayoutsOfLength(len);
    if (fits != 0 && out->count < kMaxToaOptions) {
      // A kind may not be both 'ipv6' and 'vtoa' (lib/core/kinds.ts refuses it); if a table says
      // so anyway, the lower bit wins, the same for every caller.
      const uint8_t layout = static_cast<uint8_t>(fits & -fits);
      DecodeOption(options + i, len, layout, syn, &out->options[out->count]);
      out->count++;
    }
    i += len;
  }
}

Packet ParsePacket(const uint8_t* data, size_t length, const uint8_t* kind_table) {
  Packet p;
  if (data == nullptr || length == 0) return p;
  size_t end = 0;
  size_t tcp = 0;
  switch (data[0] >> 4) {
    case 4:
      tcp = ParseIPv4(data, length, &p, &end);
      break;
    case 6:
      tcp = ParseIPv6(data, length, &p, &end);
      break;
    default:
      return Packet();
  }
  if (tcp == 0 || tcp + 20 > end) return Packet();
  const uint8_t* h = data + tcp;
  const size_t header_length = static_cast<size_t>(h[12] >> 4) * 4;
  if (header_length < 20 || tcp + header_length > end) return Packet();
  p.src.port = ReadU16(h);
  p.dst.port = ReadU16(h + 2);
  p.seq = ReadU32(h + 4);
  p.tcp_flags = h[13];
  p.payload_length = static_cast<uint32_t>(end - tcp - header_length);
  FindToaOptions(h + 20, header_length - 20, kind_table, (p.tcp_flags & kTcpSyn) != 0, &p.toa);
  p.ok = true;
  return p;
}

Address Unmapped(const Address& a) {
  static const uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (a.family != 6 || std::memcmp(a.bytes, kMappedPrefix, sizeof kMappedPrefix) != 0) return a;
  Address v4;
  v4.family = 4;
  std::memcpy(v4.bytes, a.bytes + 12, 4);
  v4.port = a.port;
  return v4;
}

bool SameAddress(const Address& a, const Address& b) {
  return a.family == b.family && a.port == b.port &&
         std::memcmp(a.bytes, b.bytes, a.family == 4 ? 4 : sizeof a.bytes) == 0;
}

void DefaultKindTable(uint8_t* table) {
  std::memset(table, 0, kKindTableSize);
  table[200] = kLayoutPortIPv4;
  table[249] = kLayoutAliDdos;
  table[253] = kLayoutPortIPv4 | kLayoutPortIPv6;
  table[254] = kLayoutPortIPv4 | kLayoutPortIPv6;
}

}  // namespace toa
