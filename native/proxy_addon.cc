// N-API glue for the PROXY protocol parser (proxy_parse.h): argument checks and the conversion of
// its struct to the JavaScript object lib/addon/native.ts describes (NativeProxyHeader). What to
// do with a header (trust, waiting, refusing) is decided in TypeScript.
#include <napi.h>

#include <cmath>
#include <cstring>

#include "js_values.h"
#include "proxy_parse.h"

namespace {

using toa::IsUint8Array;

const char* CommandName(toa::ProxyCommand c) { return c == toa::kProxyCommandLocal ? "LOCAL" : "PROXY"; }

const char* FamilyName(toa::ProxyFamily f) {
  switch (f) {
    case toa::kProxyFamilyInet:
      return "IPv4";
    case toa::kProxyFamilyInet6:
      return "IPv6";
    case toa::kProxyFamilyUnix:
      return "unix";
    default:
      return "unspec";
  }
}

const char* TransportName(toa::ProxyTransport t) {
  switch (t) {
    case toa::kProxyTransportStream:
      return "stream";
    case toa::kProxyTransportDgram:
      return "dgram";
    default:
      return "unspec";
  }
}

// { family, address, port } as the TOA paths give it; an IPv4-mapped IPv6 address stays IPv6.
Napi::Object EndpointValue(Napi::Env env, const toa::ProxyEndpoint& e, bool ipv6) {
  toa::Address a;
  a.family = ipv6 ? 6 : 4;
  std::memcpy(a.bytes, e.bytes, sizeof a.bytes);
  a.port = e.port;
  return toa::AddressValue(env, a);
}

// Flat [type, offset, length] triples: one array instead of an object per TLV.
Napi::Array TlvsValue(Napi::Env env, const toa::ProxyTlv* tlvs, size_t count) {
  Napi::Array a = Napi::Array::New(env, count * 3);
  for (uint32_t i = 0; i < count; i++) {
    a.Set(i * 3, tlvs[i].type);
    a.Set(i * 3 + 1, tlvs[i].offset);
    a.Set(i * 3 + 2, tlvs[i].length);
  }
  return a;
}

Napi::Object HeaderValue(Napi::Env env, const toa::ProxyHeader& h) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("status", static_cast<uint32_t>(h.status));
  o.Set("length", h.length);
  o.Set("reason", toa::ProxyReasonText(h.reason));
  o.Set("version", static_cast<uint32_t>(h.version));
  o.Set("command", CommandName(h.command));
  o.Set("family", FamilyName(h.family));
  o.Set("transport", TransportName(h.transport));
  if (h.has_addresses) {
    const bool ipv6 = h.family == toa::kProxyFamilyInet6;
    o.Set("source", EndpointValue(env, h.source, ipv6));
    o.Set("destination", EndpointValue(env, h.destination, ipv6));
  }
  o.Set("tlvs", TlvsValue(env, h.tlvs, h.tlv_count));
  if (h.has_ssl) {
    Napi::Object ssl = Napi::Object::New(env);
    ssl.Set("client", static_cast<uint32_t>(h.ssl_client));
    ssl.Set("verify", h.ssl_verify);
    ssl.Set("tlvs", TlvsValue(env, h.ssl_tlvs, h.ssl_tlv_count));
    o.Set("ssl", ssl);
  }
  o.Set("crc32c", h.crc_present);
  return o;
}

const uint8_t* BytesArgument(const Napi::CallbackInfo& info, size_t index, size_t* length) {
  if (!IsUint8Array(info, index)) throw Napi::TypeError::New(info.Env(), "data must be a Uint8Array or Buffer");
  auto bytes = info[index].As<Napi::Uint8Array>();
  *length = bytes.ByteLength();
  return bytes.Data();
}

// parseProxyHeader(data: Uint8Array, maxSize: number) -> NativeProxyHeader. maxSize is an integer
// >= 16 (a v2 fixed part); above 65551, the longest v2 header, it bounds nothing.
Napi::Value ParseProxyHeader(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t length = 0;
  const uint8_t* data = BytesArgument(info, 0, &length);
  if (info.Length() < 2 || !info[1].IsNumber()) throw Napi::TypeError::New(env, "maxSize must be a number");
  const double max_size = info[1].As<Napi::Number>().DoubleValue();
  if (!(max_size >= static_cast<double>(toa::kProxyV2FixedLength)) || !std::isfinite(max_size) ||
      std::floor(max_size) != max_size) {
    throw Napi::RangeError::New(env, "maxSize must be an integer >= 16, got " + info[1].ToString().Utf8Value());
  }
  const size_t bound = max_size > static_cast<double>(toa::kProxyV2MaxLength) ? toa::kProxyV2MaxLength
                                                                             : static_cast<size_t>(max_size);
  toa::ProxyHeader header;
  toa::ParseProxyHeader(data, length, bound, &header);
  return HeaderValue(env, header);
}

// testing.proxyCrc32c(data) -> the CRC32c of data, as an unsigned number.
Napi::Value ProxyCrc32c(const Napi::CallbackInfo& info) {
  size_t length = 0;
  const uint8_t* data = BytesArgument(info, 0, &length);
  return Napi::Number::New(info.Env(), toa::ProxyCrc32c(data, length));
}

}  // namespace

// Called from addon.cc's Init.
void RegisterProxy(Napi::Env env, Napi::Object exports, Napi::Object testing) {
  exports.Set("parseProxyHeader", Napi::Function::New(env, ParseProxyHeader, "parseProxyHeader"));
  testing.Set("proxyCrc32c", Napi::Function::New(env, ProxyCrc32c, "proxyCrc32c"));
}
