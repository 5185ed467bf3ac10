#include "proxy_parse.h"

#include <cstring>

#ifdef _WIN32
#include <ws2tcpip.h>
#else
#include <arpa/inet.h>
#endif

namespace toa {
namespace {

constexpr uint8_t kV1Signature[] = {'P', 'R', 'O', 'X', 'Y', ' '};
constexpr uint8_t kV2Signature[] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr size_t kV2SignatureLength = sizeof kV2Signature;
// The longest IPv6 text inet_ntop writes (INET6_ADDRSTRLEN less its NUL); an IPv4 is shorter.
constexpr size_t kV1MaxAddressText = 45;
constexpr size_t kV1MaxPortText = 5;
constexpr size_t kTlvHeader = 3;
// The SSL TLV's value starts with client (u8) and verify (u32) before its sub-TLVs.
constexpr size_t kSslFixed = 5;

const char* const kReasonTexts[kReasonCount] = {
    "",
    "v1 protocol is not TCP4, TCP6 or UNKNOWN",
    "v1 bad source address",
    "v1 bad destination address",
    "v1 address family does not match the protocol",
    "v1 bad source port",
    "v1 bad destination port",
    "v1 line without CRLF",
    "v2 bad version",
    "v2 bad command",
    "v2 bad address family or transport",
    "v2 length shorter than the address block",
    "v2 TLV overruns the header",
    "too many TLVs",
    "v2 CRC32c TLV length is not 4",
    "v2 duplicate CRC32c TLV",
    "bad CRC32c",
    "v2 SSL TLV shorter than 5 bytes",
    "v2 SSL sub-TLV overruns the SSL TLV",
    "too many SSL sub-TLVs",
    "v2 duplicate SSL TLV",
};

struct Crc32cTable {
  uint32_t entries[256] = {};
  constexpr Crc32cTable() {
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;  // reflected Castagnoli
      entries[i] = c;
    }
  }
};
constexpr Crc32cTable kCrc32c;

uint16_t ReadU16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

uint32_t ReadU32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | static_cast<uint32_t>(p[3]);
}

void Finish(ProxyHeader* out, ProxyStatus status, ProxyReason reason = kReasonNone) {
  out->status = status;
  out->reason = reason;
  if (status == kProxyOk) return;
  out->has_addresses = false;
  out->source = ProxyEndpoint();
  out->destination = ProxyEndpoint();
  out->tlv_count = 0;
  out->has_ssl = false;
  out->ssl_client = 0;
  out->ssl_verify = 0;
  out->ssl_tlv_count = 0;
  out->crc_present = false;
  if (status == kProxyMalformed || status == kProxyNotProxy) out->length = 0;
}

// ---- v1 --------------------------------------------------------------------------------------

bool IsDigit(uint8_t c) { return c >= '0' && c <= '9'; }

bool IsAddressChar(uint8_t c) {
  return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

// A dotted quad of 0..255, no leading zero, nothing else (inet_pton's rules vary by libc).
bool ParseIPv4Text(const uint8_t* s, size_t n, uint8_t* out) {
  size_t i = 0;
  for (int part = 0; part < 4; part++) {
    if (part > 0) {
      if (i >= n || s[i] != '.') return false;
      i++;
    }
    const size_t start = i;
    unsigned value = 0;
    while (i < n && IsDigit(s[i]) && i - start < 3) value = value * 10 + (s[i++] - '0');
    if (i == start || (i - start > 1 && s[start] == '0') || value > 255) return false;
    out[part] = static_cast<uint8_t>(value);
  }
  return i == n;
}

bool ParseIPv6Text(const uint8_t* s, size_t n, uint8_t* out) {
  if (n > kV1MaxAddressText) return false;
  char text[kV1MaxAddressText + 1];
  std::memcpy(text, s, n);
  text[n] = '\0';
  return inet_pton(AF_INET6, text, out) == 1;
}

bool ParsePortText(const uint8_t* s, size_t n, uint16_t* out) {
  if (n == 0 || n > kV1MaxPortText || (n > 1 && s[0] == '0')) return false;
  uint32_t value = 0;
  for (size_t i = 0; i < n; i++) {
    if (!IsDigit(s[i])) return false;
    value = value * 10 + (s[i] - '0');
  }
  if (value > 0xffff) return false;
  *out = static_cast<uint16_t>(value);
  return true;
}

enum Step { kStepOk, kStepShort, kStepBad };

// Reads a v1 line up to `end` (the bytes there, capped at the line's limit). A field still being
// received is a valid beginning while it holds only its field's characters and is no longer than
// the field's longest form; it is checked in full once its terminator is in.
struct V1Reader {
  const uint8_t* data;
  size_t end;
  size_t pos;

  Step Literal(const char* text, size_t n) {
    for (size_t i = 0; i < n; i++, pos++) {
      if (pos >= end) return kStepShort;
      if (data[pos] != static_cast<uint8_t>(text[i])) return kStepBad;
    }
    return kStepOk;
  }

  // A non-empty field of `is_char` bytes (at most `max`), then `terminator`, consumed.
  Step Field(uint8_t terminator, bool (*is_char)(uint8_t), size_t max, size_t* start, size_t* n) {
    *start = pos;
    while (pos < end && data[pos] != terminator) {
      if (!is_char(data[pos]) || pos - *start >= max) return kStepBad;
      pos++;
    }
    if (pos >= end) return kStepShort;
    *n = pos - *start;
    pos++;
    return *n == 0 ? kStepBad : kStepOk;
  }
};

// One address field of TCP4 (ipv6 false) or TCP6: a well-formed address of the other family is
// told apart from a broken one.
ProxyReason V1Address(const uint8_t* s, size_t n, bool ipv6, uint8_t* out, ProxyReason bad) {
  uint8_t other[16];
  if (ipv6) {
    if (ParseIPv6Text(s, n, out)) return kReasonNone;
    return ParseIPv4Text(s, n, other) ? kReasonV1FamilyMismatch : bad;
  }
  if (ParseIPv4Text(s, n, out)) return kReasonNone;
  return ParseIPv6Text(s, n, other) ? kReasonV1FamilyMismatch : bad;
}

void ParseV1(const uint8_t* data, size_t len, size_t max_size, ProxyHeader* out) {
  out->version = 1;
  out->command = kProxyCommandProxy;
  const size_t limit = max_size < kProxyV1MaxLength ? max_size : kProxyV1MaxLength;
  V1Reader r{data, len < limit ? len : limit, sizeof kV1Signature};
  // Out of bytes before the CRLF: more may come, unless the line has reached its limit.
  const auto out_of_bytes = [&]() {
    if (len < limit) return Finish(out, kProxyIncomplete);
    if (limit < kProxyV1MaxLength) return Finish(out, kProxyTooLarge);
    Finish(out, kProxyMalformed, kReasonV1NoCrlf);
  };
  const auto step = [&](Step s, ProxyReason bad) {
    if (s == kStepShort) out_of_bytes();
    if (s == kStepBad) Finish(out, kProxyMalformed, bad);
    return s == kStepOk;
  };

  if (r.pos >= r.end) return out_of_bytes();
  if (data[r.pos] == 'U') {
    if (!step(r.Literal("UNKNOWN", 7), kReasonV1BadProtocol)) return;
    if (r.pos >= r.end) return out_of_bytes();
    if (data[r.pos] != ' ' && data[r.pos] != '\r') return Finish(out, kProxyMalformed, kReasonV1BadProtocol);
    // Anything up to the first CRLF is ignored (the spec's rule for UNKNOWN).
    for (size_t i = r.pos; i + 1 < r.end; i++) {
      if (data[i] == '\r' && data[i + 1] == '\n') {
        out->length = static_cast<uint32_t>(i + 2);
        return Finish(out, kProxyOk);
      }
    }
    return out_of_bytes();
  }
  if (!step(r.Literal("TCP", 3), kReasonV1BadProtocol)) return;
  if (r.pos >= r.end) return out_of_bytes();
  const uint8_t which = data[r.pos];
  if (which != '4' && which != '6') return Finish(out, kProxyMalformed, kReasonV1BadProtocol);
  const bool ipv6 = which == '6';
  r.pos++;
  if (!step(r.Literal(" ", 1), kReasonV1BadProtocol)) return;

  ProxyEndpoint source, destination;
  size_t start = 0, n = 0;
  ProxyReason reason;
  if (!step(r.Field(' ', IsAddressChar, kV1MaxAddressText, &start, &n), kReasonV1BadSource)) return;
  if ((reason = V1Address(data + start, n, ipv6, source.bytes, kReasonV1BadSource)) != kReasonNone) {
    return Finish(out, kProxyMalformed, reason);
  }
  if (!step(r.Field(' ', IsAddressChar, kV1MaxAddressText, &start, &n), kReasonV1BadDestination)) return;
  if ((reason = V1Address(data + start, n, ipv6, destination.bytes, kReasonV1BadDestination)) != kReasonNone) {
    return Finish(out, kProxyMalformed, reason);
  }
  if (!step(r.Field(' ', IsDigit, kV1MaxPortText, &start, &n), kReasonV1BadSourcePort)) return;
  if (!ParsePortText(data + start, n, &source.port)) return Finish(out, kProxyMalformed, kReasonV1BadSourcePort);
  if (!step(r.Field('\r', IsDigit, kV1MaxPortText, &start, &n), kReasonV1BadDestinationPort)) return;
  if (!ParsePortText(data + start, n, &destination.port)) {
    return Finish(out, kProxyMalformed, kReasonV1BadDestinationPort);
  }
  if (!step(r.Literal("\n", 1), kReasonV1NoCrlf)) return;

  out->family = ipv6 ? kProxyFamilyInet6 : kProxyFamilyInet;
  out->transport = kProxyTransportStream;
  out->has_addresses = true;
  out->source = source;
  out->destination = destination;
  out->length = static_cast<uint32_t>(r.pos);
  Finish(out, kProxyOk);
}

// ---- v2 --------------------------------------------------------------------------------------

// The family/transport bytes the spec defines: UNSPEC, and STREAM or DGRAM over INET/INET6/UNIX.
bool IsDefinedFamily(uint8_t byte) {
  const uint8_t family = byte >> 4, transport = byte & 0x0f;
  if (family == kProxyFamilyUnspec) return transport == kProxyTransportUnspec;
  return family <= kProxyFamilyUnix && (transport == kProxyTransportStream || transport == kProxyTransportDgram);
}

size_t AddressBlockLength(ProxyFamily family) {
  switch (family) {
    case kProxyFamilyInet:
      return 12;
    case kProxyFamilyInet6:
      return 36;
    case kProxyFamilyUnix:
      return 216;
    default:
      return 0;
  }
}

// Lists the TLVs of data[start, end), which must end exactly at `end`.
ProxyReason WalkTlvs(const uint8_t* data, size_t start, size_t end, ProxyTlv* list, size_t max,
                     uint8_t* count, ProxyReason overrun, ProxyReason too_many) {
  size_t n = 0;
  for (size_t pos = start; pos < end;) {
    if (end - pos < kTlvHeader) return overrun;
    const size_t length = ReadU16(data + pos + 1);
    if (length > end - pos - kTlvHeader) return overrun;
    if (n == max) return too_many;
    list[n].type = data[pos];
    list[n].offset = static_cast<uint32_t>(pos + kTlvHeader);
    list[n].length = static_cast<uint16_t>(length);
    n++;
    pos += kTlvHeader + length;
  }
  *count = static_cast<uint8_t>(n);
  return kReasonNone;
}

// The CRC32c and SSL TLVs among the listed ones.
ProxyReason CheckTlvs(const uint8_t* data, size_t total, ProxyHeader* out) {
  bool crc_seen = false;
  size_t crc_offset = 0;
  for (size_t i = 0; i < out->tlv_count; i++) {
    const ProxyTlv& t = out->tlvs[i];
    if (t.type == kPp2TypeCrc32c) {
      if (crc_seen) return kReasonV2DuplicateCrc;
      if (t.length != 4) return kReasonV2BadCrcLength;
      crc_seen = true;
      crc_offset = t.offset;
    } else if (t.type == kPp2TypeSsl) {
      if (out->has_ssl) return kReasonV2DuplicateSsl;
      if (t.length < kSslFixed) return kReasonV2SslTooShort;
      out->has_ssl = true;
      out->ssl_client = data[t.offset];
      out->ssl_verify = ReadU32(data + t.offset + 1);
      const ProxyReason r = WalkTlvs(data, t.offset + kSslFixed, t.offset + t.length, out->ssl_tlvs,
                                     kProxyMaxSslTlvs, &out->ssl_tlv_count, kReasonV2SslOverrun,
                                     kReasonV2TooManySslTlvs);
      if (r != kReasonNone) return r;
    }
  }
  if (crc_seen) {
    if (ProxyCrc32c(data, total, crc_offset, 4) != ReadU32(data + crc_offset)) return kReasonV2BadCrc;
    out->crc_present = true;
  }
  return kReasonNone;
}

void ParseV2(const uint8_t* data, size_t len, size_t max_size, ProxyHeader* out) {
  out->version = 2;
  // Each byte of the fixed part is judged as soon as it is in.
  if (len > 12) {
    if ((data[12] >> 4) != 2) return Finish(out, kProxyMalformed, kReasonV2BadVersion);
    const uint8_t command = data[12] & 0x0f;
    if (command > kProxyCommandProxy) return Finish(out, kProxyMalformed, kReasonV2BadCommand);
    out->command = static_cast<ProxyCommand>(command);
  }
  bool defined = false;
  if (len > 13) {
    defined = IsDefinedFamily(data[13]);
    if (!defined && out->command == kProxyCommandProxy) return Finish(out, kProxyMalformed, kReasonV2BadFamily);
    // LOCAL ignores its family byte: an undefined one reads as unspec.
    if (defined) {
      out->family = static_cast<ProxyFamily>(data[13] >> 4);
      out->transport = static_cast<ProxyTransport>(data[13] & 0x0f);
    }
  }
  if (len < kProxyV2FixedLength) {
    return Finish(out, max_size < kProxyV2FixedLength ? kProxyTooLarge : kProxyIncomplete);
  }
  const size_t payload = ReadU16(data + 14);
  const size_t total = kProxyV2FixedLength + payload;
  out->length = static_cast<uint32_t>(total);
  const size_t block = AddressBlockLength(out->family);
  if (out->command == kProxyCommandProxy && payload < block) {
    return Finish(out, kProxyMalformed, kReasonV2ShortAddresses);
  }
  if (total > max_size) return Finish(out, kProxyTooLarge);
  if (len < total) return Finish(out, kProxyIncomplete);

  // LOCAL whose block does not fit (or whose family byte is undefined): all of it is ignored.
  const bool walk = out->command == kProxyCommandProxy || (defined && payload >= block);
  if (walk) {
    ProxyReason r = WalkTlvs(data, kProxyV2FixedLength + block, total, out->tlvs, kProxyMaxTlvs,
                             &out->tlv_count, kReasonV2TlvOverrun, kReasonV2TooManyTlvs);
    if (r == kReasonNone) r = CheckTlvs(data, total, out);
    if (r != kReasonNone) return Finish(out, kProxyMalformed, r);
  }
  if (out->command == kProxyCommandProxy &&
      (out->family == kProxyFamilyInet || out->family == kProxyFamilyInet6)) {
    const uint8_t* a = data + kProxyV2FixedLength;
    const size_t size = out->family == kProxyFamilyInet ? 4 : 16;
    std::memcpy(out->source.bytes, a, size);
    std::memcpy(out->destination.bytes, a + size, size);
    out->source.port = ReadU16(a + 2 * size);
    out->destination.port = ReadU16(a + 2 * size + 2);
    out->has_addresses = true;
  }
  Finish(out, kProxyOk);
}

}  // namespace

const char* ProxyReasonText(ProxyReason reason) {
  return reason < kReasonCount ? kReasonTexts[reason] : "";
}

uint32_t ProxyCrc32c(const uint8_t* data, size_t len, size_t skip_offset, size_t skip) {
  uint32_t crc = 0xffffffffu;
  for (size_t i = 0; i < len; i++) {
    const uint8_t byte = (i >= skip_offset && i - skip_offset < skip) ? 0 : data[i];
    crc = kCrc32c.entries[(crc ^ byte) & 0xff] ^ (crc >> 8);
  }
  return crc ^ 0xffffffffu;
}

void ParseProxyHeader(const uint8_t* data, size_t len, size_t max_size, ProxyHeader* out) {
  *out = ProxyHeader();
  if (data == nullptr) len = 0;
  if (len == 0) return Finish(out, kProxyIncomplete);
  // The two signatures differ in their first byte, so at most one is still possible.
  const size_t v1 = len < sizeof kV1Signature ? len : sizeof kV1Signature;
  const size_t v2 = len < kV2SignatureLength ? len : kV2SignatureLength;
  if (std::memcmp(data, kV1Signature, v1) == 0) {
    if (len < sizeof kV1Signature) return Finish(out, kProxyIncomplete);
    return ParseV1(data, len, max_size, out);
  }
  if (std::memcmp(data, kV2Signature, v2) == 0) {
    if (len < kV2SignatureLength) return Finish(out, kProxyIncomplete);
    return ParseV2(data, len, max_size, out);
  }
  Finish(out, kProxyNotProxy);
}

}  // namespace toa
