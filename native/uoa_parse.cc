#include "uoa_parse.h"

#include <cstring>

namespace toa {

namespace {

constexpr size_t kIpv4Header = 20;
constexpr size_t kIpv6Header = 40;
constexpr size_t kUdpHeader = 8;
constexpr size_t kOppHeader = 4;  // DPVS struct opphdr: version/reserved, protocol, length

uint16_t U16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

bool Zero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (p[i] != 0) return false;
  }
  return true;
}

// The UDP header at data[at, len): ports and payload length into out. False when it is not there
// or its length field is below the header's.
bool ReadUdp(const uint8_t* data, size_t len, size_t at, UoaPacket* out) {
  if (at > len || len - at < kUdpHeader) return false;
  const uint8_t* u = data + at;
  const uint16_t udp_length = U16(u + 4);
  if (udp_length < kUdpHeader) return false;
  out->source.port = U16(u);
  out->destination.port = U16(u + 2);
  out->payload_length = static_cast<uint16_t>(udp_length - kUdpHeader);
  return true;
}

void ParseIpv4(const uint8_t* data, size_t len, UoaPacket* out) {
  const size_t ihl = static_cast<size_t>(data[0] & 0x0f) * 4;
  if (ihl < kIpv4Header || len < ihl) return;
  const uint16_t total = U16(data + 2);
  if (total < ihl) return;
  // A fragment other than the first carries no UDP header.
  if ((U16(data + 6) & 0x1fff) != 0) return;
  const uint8_t protocol = data[9];
  UoaPacket p;
  std::memcpy(p.source.bytes, data + 12, 4);
  std::memcpy(p.destination.bytes, data + 16, 4);
  if (protocol == kIpProtoUdp) {
    if (!ReadUdp(data, len, ihl, &p)) return;
    p.status = FindUoaOption(data + kIpv4Header, ihl - kIpv4Header, &p.client);
    p.has_client = p.status == kUoaFound;
    *out = p;
    return;
  }
  if (protocol != kIpProtoUoa) return;
  // Private protocol: opphdr { version:4 reserved:4, protocol, length (of opphdr and options) }.
  if (len - ihl < kOppHeader) return;
  const uint8_t* opp = data + ihl;
  const size_t opp_length = U16(opp + 2);
  if ((opp[0] >> 4) != 1 || opp[1] != kIpProtoUdp || opp_length < kOppHeader || len - ihl < opp_length) return;
  if (!ReadUdp(data, len, ihl + opp_length, &p)) return;
  const UoaPacketStatus found = FindUoaOption(opp + kOppHeader, opp_length - kOppHeader, &p.client);
  p.has_client = found == kUoaFound;
  p.status = found == kUoaMalformed ? kUoaMalformed : kUoaPrivate;
  *out = p;
}

void ParseIpv6(const uint8_t* data, size_t len, UoaPacket* out) {
  if (len < kIpv6Header) return;
  const uint8_t next = data[6];
  UoaPacket p;
  p.source.ipv6 = p.destination.ipv6 = true;
  std::memcpy(p.source.bytes, data + 8, 16);
  std::memcpy(p.destination.bytes, data + 24, 16);
  if (next == kIpProtoUdp) {
    // IPv6 has no IPv4 options: a plain UDP packet, never a UOA in IP-option mode.
    if (!ReadUdp(data, len, kIpv6Header, &p)) return;
    p.status = kUoaNone;
    *out = p;
    return;
  }
  if (next != kIpProtoUoa || len - kIpv6Header < kOppHeader) return;
  const uint8_t* opp = data + kIpv6Header;
  const size_t opp_length = U16(opp + 2);
  if ((opp[0] >> 4) != 2 || opp[1] != kIpProtoUdp || opp_length < kOppHeader || len - kIpv6Header < opp_length) return;
  if (!ReadUdp(data, len, kIpv6Header + opp_length, &p)) return;
  const UoaPacketStatus found = FindUoaOption(opp + kOppHeader, opp_length - kOppHeader, &p.client);
  p.has_client = found == kUoaFound;
  p.status = found == kUoaMalformed ? kUoaMalformed : kUoaPrivate;
  *out = p;
}

}  // namespace

UoaPacketStatus FindUoaOption(const uint8_t* data, size_t len, UoaAddress* client) {
  size_t i = 0;
  while (i < len) {
    const uint8_t type = data[i];
    if (type == 0) return kUoaNone;  // end of option list
    if (type == 1) {                 // no-operation
      i++;
      continue;
    }
    if (len - i < 2) return kUoaMalformed;
    const uint8_t length = data[i + 1];
    if (length < 2 || length > len - i) return kUoaMalformed;
    if (type == kUoaOptionType) {
      if (length != kUoaLengthIpv4 && length != kUoaLengthIpv6) return kUoaMalformed;
      const uint8_t* o = data + i;
      UoaAddress a;
      a.port = U16(o + 2);
      a.ipv6 = length == kUoaLengthIpv6;
      std::memcpy(a.bytes, o + 4, a.ipv6 ? 16 : 4);
      if (Zero(a.bytes, a.ipv6 ? 16 : 4)) return kUoaMalformed;
      *client = a;
      return kUoaFound;
    }
    i += length;
  }
  return kUoaNone;
}

void ParseUoaPacket(const uint8_t* data, size_t len, UoaPacket* out) {
  *out = UoaPacket();
  if (data == nullptr || len < 1) return;
  const uint8_t version = data[0] >> 4;
  if (version == 4 && len >= kIpv4Header) ParseIpv4(data, len, out);
  else if (version == 6) ParseIpv6(data, len, out);
}

}  // namespace toa
