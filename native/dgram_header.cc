#include "dgram_header.h"

#include <cstring>

#include "spp_parse.h"

namespace toa {

namespace {

const uint8_t kV2Signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

void FromSpp(const SppEndpoint& e, DgramEndpoint* out) {
  out->ipv6 = !e.ipv4;
  if (e.ipv4) std::memcpy(out->bytes, e.bytes + 12, 4);
  else std::memcpy(out->bytes, e.bytes, 16);
  out->port = e.port;
}

void FromProxy(const ProxyEndpoint& e, bool ipv6, DgramEndpoint* out) {
  out->ipv6 = ipv6;
  std::memcpy(out->bytes, e.bytes, 16);
  out->port = e.port;
}

bool Zero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (p[i] != 0) return false;
  }
  return true;
}

void Malformed(DgramHeader* out, DgramReason reason) {
  out->kind = kDgramMalformed;
  out->reason = reason;
  out->length = 0;
}

void ParseProxy(const uint8_t* data, size_t len, size_t max_size, DgramHeader* out) {
  ProxyHeader h;
  ParseProxyHeader(data, len, max_size, &h);
  switch (h.status) {
    case kProxyOk:
      break;
    case kProxyTooLarge:
      out->kind = kDgramTooLarge;
      out->reason = kDgramReasonProxy;
      out->proxy_reason = h.reason;
      return;
    case kProxyMalformed:
      out->kind = kDgramMalformed;
      out->reason = kDgramReasonProxy;
      out->proxy_reason = h.reason;
      return;
    default:  // incomplete: the datagram ends inside the header
      Malformed(out, kDgramReasonProxyCut);
      return;
  }
  out->length = h.length;
  if (h.command != kProxyCommandProxy || !h.has_addresses) {
    out->kind = kDgramProxyLocal;
    return;
  }
  if (h.transport != kProxyTransportDgram) {
    Malformed(out, kDgramReasonProxyStream);
    return;
  }
  const bool ipv6 = h.family == kProxyFamilyInet6;
  if (Zero(h.source.bytes, ipv6 ? 16 : 4)) {
    Malformed(out, kDgramReasonProxyNoClient);
    return;
  }
  out->kind = kDgramProxy;
  FromProxy(h.source, ipv6, &out->client);
  FromProxy(h.destination, ipv6, &out->other);
}

}  // namespace

void ParseDgramHeader(const uint8_t* data, size_t len, uint8_t formats, size_t max_size, DgramHeader* out) {
  *out = DgramHeader();
  if (data == nullptr) return;
  if ((formats & kDgramFormatProxy) != 0 && len >= sizeof kV2Signature &&
      std::memcmp(data, kV2Signature, sizeof kV2Signature) == 0) {
    ParseProxy(data, len, max_size < kProxyV2FixedLength ? kProxyV2FixedLength : max_size, out);
    return;
  }
  if ((formats & kDgramFormatSpp) != 0) {
    SppHeader spp;
    ParseSpp(data, len, &spp);
    switch (spp.status) {
      case kSppOk:
        out->kind = kDgramSpp;
        out->length = kSppLength;
        FromSpp(spp.client, &out->client);
        FromSpp(spp.proxy, &out->other);
        return;
      case kSppTruncated:
        Malformed(out, kDgramReasonSppTruncated);
        return;
      case kSppNoClient:
        Malformed(out, kDgramReasonSppNoClient);
        return;
      default:
        return;
    }
  }
}

const char* DgramReasonText(const DgramHeader& header) {
  switch (header.reason) {
    case kDgramReasonSppTruncated:
      return SppStatusText(kSppTruncated);
    case kDgramReasonSppNoClient:
      return SppStatusText(kSppNoClient);
    case kDgramReasonProxyCut:
      return "PROXY v2 header longer than the datagram";
    case kDgramReasonProxyStream:
      return "PROXY v2 header for a TCP connection (transport STREAM) in a datagram";
    case kDgramReasonProxyNoClient:
      return "PROXY v2 header without a source address";
    case kDgramReasonProxy:
      return ProxyReasonText(header.proxy_reason);
    default:
      return "";
  }
}

}  // namespace toa
