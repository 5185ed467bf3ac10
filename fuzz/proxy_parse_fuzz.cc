// libFuzzer target for the PROXY protocol parser (built by scripts/fuzz.sh through CMakeLists.txt
// TOA_FUZZ=ON). Besides memory errors (ASan) and undefined behaviour (UBSan), it checks the
// parser's promises: an ok header lies inside the input and within max_size, its TLVs tile its
// bytes and its addresses are the bytes there; any prefix of an ok header is incomplete; a
// prefix's refusal is final; what follows a header changes nothing; and a v2 header re-encoded
// from the result gives the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "../native/proxy_parse.h"

namespace {

void Check(bool condition) {
  if (!condition) std::abort();
}

bool SameResult(const toa::ProxyHeader& a, const toa::ProxyHeader& b) {
  if (a.status != b.status || a.reason != b.reason || a.length != b.length || a.version != b.version) return false;
  if (a.status != toa::kProxyOk) return true;
  if (a.command != b.command || a.family != b.family || a.transport != b.transport) return false;
  if (a.has_addresses != b.has_addresses || a.tlv_count != b.tlv_count || a.has_ssl != b.has_ssl) return false;
  if (a.crc_present != b.crc_present || a.ssl_tlv_count != b.ssl_tlv_count) return false;
  if (std::memcmp(a.source.bytes, b.source.bytes, 16) != 0 || a.source.port != b.source.port) return false;
  if (std::memcmp(a.destination.bytes, b.destination.bytes, 16) != 0 || a.destination.port != b.destination.port) {
    return false;
  }
  for (size_t i = 0; i < a.tlv_count; i++) {
    if (a.tlvs[i].type != b.tlvs[i].type || a.tlvs[i].offset != b.tlvs[i].offset || a.tlvs[i].length != b.tlvs[i].length) {
      return false;
    }
  }
  return true;
}

// Parses a copy of exactly `len` bytes, so a read past them is caught.
toa::ProxyHeader Parse(const uint8_t* data, size_t len, size_t max_size) {
  std::vector<uint8_t> copy(data, data + len);
  toa::ProxyHeader h;
  toa::ParseProxyHeader(copy.empty() ? nullptr : copy.data(), len, max_size, &h);
  return h;
}

uint16_t ReadU16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

// TLVs follow one another from `start` to `end` exactly, each where its header says.
void CheckTiling(const uint8_t* data, const toa::ProxyTlv* tlvs, size_t count, size_t start, size_t end) {
  size_t pos = start;
  for (size_t i = 0; i < count; i++) {
    Check(tlvs[i].offset == pos + 3);
    Check(data[pos] == tlvs[i].type);
    Check(ReadU16(data + pos + 1) == tlvs[i].length);
    pos += 3 + tlvs[i].length;
  }
  if (count > 0) Check(pos == end);
}

// The v2 header rebuilt from what the parser reported, where the result determines every byte:
// PROXY over IPv4/IPv6 (the TLV values copied from their reported offsets).
void CheckV2Roundtrip(const uint8_t* data, const toa::ProxyHeader& h) {
  if (h.command != toa::kProxyCommandProxy || !h.has_addresses) return;
  static const uint8_t kSignature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
  std::vector<uint8_t> out(kSignature, kSignature + 12);
  out.push_back(0x21);
  out.push_back(static_cast<uint8_t>((h.family << 4) | h.transport));
  out.push_back(static_cast<uint8_t>((h.length - 16) >> 8));
  out.push_back(static_cast<uint8_t>(h.length - 16));
  const size_t width = h.family == toa::kProxyFamilyInet ? 4 : 16;
  out.insert(out.end(), h.source.bytes, h.source.bytes + width);
  out.insert(out.end(), h.destination.bytes, h.destination.bytes + width);
  for (uint16_t port : {h.source.port, h.destination.port}) {
    out.push_back(static_cast<uint8_t>(port >> 8));
    out.push_back(static_cast<uint8_t>(port));
  }
  for (size_t i = 0; i < h.tlv_count; i++) {
    const toa::ProxyTlv& t = h.tlvs[i];
    out.push_back(t.type);
    out.push_back(static_cast<uint8_t>(t.length >> 8));
    out.push_back(static_cast<uint8_t>(t.length));
    out.insert(out.end(), data + t.offset, data + t.offset + t.length);
  }
  Check(out.size() == h.length);
  Check(std::memcmp(out.data(), data, h.length) == 0);
}

void CheckOk(const uint8_t* data, size_t len, size_t max_size, const toa::ProxyHeader& h) {
  Check(h.length > 0 && h.length <= len && h.length <= max_size);
  Check(h.reason == toa::kReasonNone);
  Check(h.tlv_count <= toa::kProxyMaxTlvs && h.ssl_tlv_count <= toa::kProxyMaxSslTlvs);
  for (size_t i = 0; i < h.tlv_count; i++) Check(h.tlvs[i].offset + h.tlvs[i].length <= h.length);
  if (h.version == 1) {
    Check(h.length <= toa::kProxyV1MaxLength && h.length >= 15);
    Check(data[h.length - 2] == '\r' && data[h.length - 1] == '\n');
    Check(h.tlv_count == 0 && !h.has_ssl && !h.crc_present);
    Check(h.has_addresses == (h.family != toa::kProxyFamilyUnspec));
  } else {
    Check(h.version == 2);
    Check(h.length == 16u + ReadU16(data + 14));
    Check((data[12] >> 4) == 2);
    Check(h.command == (data[12] & 0x0f));
    if (h.has_addresses) {
      Check(h.command == toa::kProxyCommandProxy);
      Check(h.family == toa::kProxyFamilyInet || h.family == toa::kProxyFamilyInet6);
      const size_t width = h.family == toa::kProxyFamilyInet ? 4 : 16;
      CheckTiling(data, h.tlvs, h.tlv_count, 16 + 2 * width + 4, h.length);
    }
    if (h.has_ssl) {
      const toa::ProxyTlv* ssl = nullptr;
      for (size_t i = 0; i < h.tlv_count; i++) {
        if (h.tlvs[i].type == toa::kPp2TypeSsl) ssl = &h.tlvs[i];
      }
      Check(ssl != nullptr && ssl->length >= 5);
      Check(data[ssl->offset] == h.ssl_client);
      CheckTiling(data, h.ssl_tlvs, h.ssl_tlv_count, ssl->offset + 5, ssl->offset + ssl->length);
    }
    if (h.crc_present) {
      for (size_t i = 0; i < h.tlv_count; i++) {
        if (h.tlvs[i].type != toa::kPp2TypeCrc32c) continue;
        const uint8_t* v = data + h.tlvs[i].offset;
        const uint32_t stored = (static_cast<uint32_t>(v[0]) << 24) | (v[1] << 16) | (v[2] << 8) | v[3];
        Check(toa::ProxyCrc32c(data, h.length, h.tlvs[i].offset, 4) == stored);
      }
    }
    CheckV2Roundtrip(data, h);
  }
  // A header is decided by its own bytes: a prefix is incomplete, anything after it changes nothing.
  Check(Parse(data, h.length - 1, max_size).status == toa::kProxyIncomplete);
  Check(SameResult(Parse(data, h.length, max_size), h));
  std::vector<uint8_t> extended(data, data + h.length);
  extended.push_back(static_cast<uint8_t>(~(h.length < len ? data[h.length] : 0)));
  extended.insert(extended.end(), data, data + (len < 64 ? len : 64));
  Check(SameResult(Parse(extended.data(), extended.size(), max_size), h));
}

void Run(const uint8_t* data, size_t len, size_t max_size) {
  const toa::ProxyHeader h = Parse(data, len, max_size);
  Check(h.status <= toa::kProxyTooLarge);
  Check((h.reason != toa::kReasonNone) == (h.status == toa::kProxyMalformed));
  Check(h.reason < toa::kReasonCount && toa::ProxyReasonText(h.reason) != nullptr);
  if (h.status == toa::kProxyOk) {
    CheckOk(data, len, max_size, h);
  } else {
    Check(h.tlv_count == 0 && h.ssl_tlv_count == 0 && !h.has_addresses && !h.has_ssl && !h.crc_present);
  }
  if (h.status == toa::kProxyIncomplete && h.length != 0) Check(h.length > len && h.length <= max_size);
  // A refusal is final: the bytes that decided it are in every prefix that is refused too, and in
  // the whole input. Check a few prefixes.
  for (size_t k : {len / 2, len > 16 ? size_t{16} : len, len > 13 ? size_t{13} : len}) {
    const toa::ProxyHeader p = Parse(data, k, max_size);
    if (p.status == toa::kProxyNotProxy || p.status == toa::kProxyMalformed || p.status == toa::kProxyTooLarge) {
      Check(p.status == h.status && p.reason == h.reason);
    }
    if (h.status == toa::kProxyOk) Check(p.status == toa::kProxyIncomplete || k >= h.length);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Run(data, size, toa::kProxyV2MaxLength);
  // A max_size chosen by the input: the first two bytes, then the header.
  if (size >= 2) {
    const size_t max_size = 16 + ReadU16(data) % 512;
    Run(data + 2, size - 2, max_size);
  }
  return 0;
}
