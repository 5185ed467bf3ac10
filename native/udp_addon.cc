// N-API glue for UDP (lib/udp/): the datagram header parser (dgram_header.h over spp_parse.h and
// proxy_parse.h) as a function bound to a byte record, so a datagram costs one call and no object.
// What to do with a header (trust, flows, drops) is decided in TypeScript.
#include <napi.h>

#include <cstring>

#include "dgram_header.h"
#include "js_values.h"

namespace {

using toa::IsUint8Array;

// The record a bound parser fills (lib/udp/header.ts decodes it with dgramRecordLayout).
namespace layout {
constexpr size_t kKind = 0;     // DgramKind
constexpr size_t kReason = 1;   // index into `reasons`
constexpr size_t kClientV6 = 2; // 1 when the client is IPv6
constexpr size_t kOtherV6 = 3;
constexpr size_t kLength = 4;   // u32 big-endian
constexpr size_t kClient = 8;   // 16 address bytes (IPv4 in the first 4), then the port big-endian
constexpr size_t kOther = 26;
constexpr size_t kSize = 44;
}  // namespace layout

uint8_t ReasonIndex(const toa::DgramHeader& h) {
  if (h.reason == toa::kDgramReasonProxy) return static_cast<uint8_t>(toa::kDgramReasonCount + h.proxy_reason);
  return h.reason;
}

void PutEndpoint(uint8_t* at, const toa::DgramEndpoint& e) {
  std::memcpy(at, e.bytes, sizeof e.bytes);
  at[16] = static_cast<uint8_t>(e.port >> 8);
  at[17] = static_cast<uint8_t>(e.port);
}

struct DgramParser {
  Napi::Reference<Napi::Uint8Array> record;
  uint8_t* record_data;
};

// parser(data, formats, maxSize) -> DgramKind, the record filled (the endpoints only when set).
Napi::Value ParseBound(const Napi::CallbackInfo& info) {
  const auto* parser = static_cast<const DgramParser*>(info.Data());
  Napi::Env env = info.Env();
  if (!IsUint8Array(info, 0)) throw Napi::TypeError::New(env, "data must be a Uint8Array or Buffer");
  auto bytes = info[0].As<Napi::Uint8Array>();
  uint32_t formats = 0;
  uint32_t max_size = 0;
  if (info.Length() < 3 || napi_get_value_uint32(env, info[1], &formats) != napi_ok ||
      napi_get_value_uint32(env, info[2], &max_size) != napi_ok) {
    throw Napi::TypeError::New(env, "parser(data, formats, maxSize): formats and maxSize must be numbers");
  }
  toa::DgramHeader h;
  toa::ParseDgramHeader(bytes.Data(), bytes.ByteLength(), static_cast<uint8_t>(formats), max_size, &h);
  uint8_t* r = parser->record_data;
  r[layout::kKind] = h.kind;
  r[layout::kReason] = ReasonIndex(h);
  r[layout::kClientV6] = h.client.ipv6 ? 1 : 0;
  r[layout::kOtherV6] = h.other.ipv6 ? 1 : 0;
  r[layout::kLength] = static_cast<uint8_t>(h.length >> 24);
  r[layout::kLength + 1] = static_cast<uint8_t>(h.length >> 16);
  r[layout::kLength + 2] = static_cast<uint8_t>(h.length >> 8);
  r[layout::kLength + 3] = static_cast<uint8_t>(h.length);
  if (h.kind == toa::kDgramSpp || h.kind == toa::kDgramProxy) {
    PutEndpoint(r + layout::kClient, h.client);
    PutEndpoint(r + layout::kOther, h.other);
  }
  return Napi::Number::New(env, h.kind);
}

// makeDgramParser(record) -> parser(data, formats, maxSize). The record (dgramRecordLayout.size
// bytes) is held by a reference, so its memory stays put as long as the function lives.
Napi::Value MakeDgramParser(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IsUint8Array(info, 0) || info[0].As<Napi::Uint8Array>().ByteLength() < layout::kSize) {
    throw Napi::TypeError::New(env, "record must be a Uint8Array of dgramRecordLayout.size bytes");
  }
  auto* parser = new DgramParser();
  parser->record = Napi::Persistent(info[0].As<Napi::Uint8Array>());
  parser->record_data = info[0].As<Napi::Uint8Array>().Data();
  Napi::Function fn = Napi::Function::New(env, ParseBound, "parseDgramHeader", parser);
  fn.AddFinalizer([](Napi::Env, DgramParser* p) { delete p; }, parser);
  return fn;
}

Napi::Object DgramRecordLayout(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  const auto set = [&](const char* name, size_t value) { o.Set(name, static_cast<double>(value)); };
  set("size", layout::kSize);
  set("kind", layout::kKind);
  set("reason", layout::kReason);
  set("clientV6", layout::kClientV6);
  set("otherV6", layout::kOtherV6);
  set("length", layout::kLength);
  set("client", layout::kClient);
  set("other", layout::kOther);
  set("formatSpp", toa::kDgramFormatSpp);
  set("formatProxy", toa::kDgramFormatProxy);
  const uint32_t count = toa::kDgramReasonCount + toa::kReasonCount;
  Napi::Array reasons = Napi::Array::New(env, count);
  for (uint32_t i = 0; i < count; i++) {
    toa::DgramHeader h;
    if (i < toa::kDgramReasonCount) {
      h.reason = static_cast<toa::DgramReason>(i);
    } else {
      h.reason = toa::kDgramReasonProxy;
      h.proxy_reason = static_cast<toa::ProxyReason>(i - toa::kDgramReasonCount);
    }
    reasons.Set(i, toa::DgramReasonText(h));
  }
  o.Set("reasons", reasons);
  return o;
}

}  // namespace

// Called from addon.cc's Init.
void RegisterUdp(Napi::Env env, Napi::Object exports, Napi::Object /* testing */) {
  exports.Set("makeDgramParser", Napi::Function::New(env, MakeDgramParser, "makeDgramParser"));
  exports.Set("dgramRecordLayout", DgramRecordLayout(env));
}
