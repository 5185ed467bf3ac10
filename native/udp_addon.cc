// N-API glue for UDP (lib/udp/): the datagram header parser (dgram_header.h over spp_parse.h and
// proxy_parse.h) as a function bound to a byte record, so a datagram costs one call and no object.
// What to do with a header (trust, flows, drops) is decided in TypeScript.
#include <napi.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include "dgram_header.h"
#include "js_values.h"
#include "uoa_parse.h"
#include "uoa_tap.h"

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

// --- DPVS UOA -------------------------------------------------------------------------------

toa::UoaAddress UoaArgument(const Napi::CallbackInfo& info, size_t index) {
  const toa::Address a = toa::AddressArgument(info, index, "address");
  if (info.Length() <= index + 1 || !info[index + 1].IsNumber()) throw Napi::TypeError::New(info.Env(), "port must be a number");
  const uint32_t port = info[index + 1].As<Napi::Number>().Uint32Value();
  if (port > 65535) throw Napi::RangeError::New(info.Env(), "port must be from 0 to 65535");
  toa::UoaAddress u;
  u.ipv6 = a.family == 6;
  std::memcpy(u.bytes, a.bytes, sizeof u.bytes);
  u.port = static_cast<uint16_t>(port);
  return u;
}

Napi::Object UoaValue(Napi::Env env, const toa::UoaAddress& u) {
  toa::Address a;
  a.family = u.ipv6 ? 6 : 4;
  std::memcpy(a.bytes, u.bytes, sizeof a.bytes);
  a.port = u.port;
  return toa::AddressValue(env, a);
}

uint32_t Bounded(const Napi::CallbackInfo& info, size_t index, const char* name, uint32_t min, uint32_t max) {
  if (info.Length() <= index || !info[index].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  }
  const double v = info[index].As<Napi::Number>().DoubleValue();
  if (!(v >= min && v <= max)) throw Napi::RangeError::New(info.Env(), std::string(name) + " is out of range");
  return static_cast<uint32_t>(v);
}

class UoaTapWrap : public Napi::ObjectWrap<UoaTapWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "UoaTap",
                       {
                           InstanceMethod<&UoaTapWrap::Open>("open"),
                           InstanceMethod<&UoaTapWrap::Fresh>("fresh"),
                           InstanceMethod<&UoaTapWrap::Drain>("drain"),
                           InstanceMethod<&UoaTapWrap::Stats>("stats"),
                           InstanceMethod<&UoaTapWrap::Close>("close"),
                       });
  }

  // new UoaTap(capacity, maxAgeMs)
  explicit UoaTapWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<UoaTapWrap>(info) {
    const uint32_t capacity = Bounded(info, 0, "capacity", 1, 1u << 24);
    const uint32_t max_age = Bounded(info, 1, "maxAgeMs", 100, 86400000u);
    tap_ = std::make_unique<toa::UoaTap>(capacity, max_age);
  }

 private:
  toa::UoaTap& tap(Napi::Env env) {
    if (!tap_) throw Napi::Error::New(env, "the UOA tap is closed");
    return *tap_;
  }

  // open(port, receiveBuffer) -> { errno, syscall? }; port 0: every port.
  Napi::Value Open(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const uint32_t port = Bounded(info, 0, "port", 0, 65535);
    const uint32_t receive_buffer = Bounded(info, 1, "receiveBuffer", 0, 1u << 30);
    const char* failed_call = nullptr;
    const int err = tap(env).Open(static_cast<uint16_t>(port), static_cast<int>(receive_buffer), &failed_call);
    Napi::Object result = Napi::Object::New(env);
    result.Set("errno", err);
    if (err != 0 && failed_call != nullptr) result.Set("syscall", failed_call);
    return result;
  }

  // fresh(address, port) -> { family, address, port } | null: the client the newest UOA from this
  // proxy end named, when one arrived since the last call (consumed).
  Napi::Value Fresh(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const toa::UoaAddress source = UoaArgument(info, 0);
    toa::UoaAddress client;
    if (!tap(env).Fresh(source, &client)) return env.Null();
    return UoaValue(env, client);
  }

  Napi::Value Drain(const Napi::CallbackInfo& info) {
    tap(info.Env()).Drain();
    return info.Env().Undefined();
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const toa::UoaTapStats s = tap(env).Stats();
    Napi::Object o = Napi::Object::New(env);
    o.Set("packets", static_cast<double>(s.packets));
    o.Set("found", static_cast<double>(s.found));
    o.Set("privateProtocol", static_cast<double>(s.private_protocol));
    o.Set("malformed", static_cast<double>(s.malformed));
    o.Set("evictions", static_cast<double>(s.evictions));
    o.Set("drops", static_cast<double>(s.drops));
    o.Set("tableSize", static_cast<double>(tap(env).size()));
    return o;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (tap_) tap_->Close();
    tap_.reset();
    return info.Env().Undefined();
  }

  std::unique_ptr<toa::UoaTap> tap_;
};

// uoaModuleLookup(fd, address, port, localPort) -> { family, address, port } | null (no mapping) | -errno
Napi::Value UoaModuleLookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int32_t fd = toa::FdArgument(info, 0);
  const toa::UoaAddress source = UoaArgument(info, 1);
  const uint32_t local_port = Bounded(info, 3, "localPort", 0, 65535);
  toa::UoaAddress client;
  const int err = toa::UoaModuleLookup(fd, source, static_cast<uint16_t>(local_port), &client);
  if (err == ENOENT) return env.Null();
  if (err != 0) return Napi::Number::New(env, -err);
  return UoaValue(env, client);
}

const char* UoaStatusName(toa::UoaPacketStatus s) {
  switch (s) {
    case toa::kUoaNone:
      return "none";
    case toa::kUoaFound:
      return "found";
    case toa::kUoaPrivate:
      return "private";
    case toa::kUoaMalformed:
      return "malformed";
    default:
      return "notUdp";
  }
}

// testing.parseUoaPacket(packet) -> { status, source?, destination?, client?, payloadLength? }
Napi::Value ParseUoaPacket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IsUint8Array(info, 0)) throw Napi::TypeError::New(env, "packet must be a Uint8Array or Buffer");
  auto bytes = info[0].As<Napi::Uint8Array>();
  toa::UoaPacket p;
  toa::ParseUoaPacket(bytes.Data(), bytes.ByteLength(), &p);
  Napi::Object o = Napi::Object::New(env);
  o.Set("status", UoaStatusName(p.status));
  if (p.status == toa::kUoaNotUdp) return o;
  o.Set("source", UoaValue(env, p.source));
  o.Set("destination", UoaValue(env, p.destination));
  o.Set("payloadLength", p.payload_length);
  if (p.has_client) o.Set("client", UoaValue(env, p.client));
  return o;
}

}  // namespace

// Called from addon.cc's Init.
void RegisterUdp(Napi::Env env, Napi::Object exports, Napi::Object testing) {
  exports.Set("makeDgramParser", Napi::Function::New(env, MakeDgramParser, "makeDgramParser"));
  exports.Set("dgramRecordLayout", DgramRecordLayout(env));
  exports.Set("uoaTapSupported", Napi::Boolean::New(env, toa::UoaTapSupported()));
  exports.Set("UoaTap", UoaTapWrap::Define(env));
  exports.Set("uoaModuleLookup", Napi::Function::New(env, UoaModuleLookup, "uoaModuleLookup"));
  testing.Set("parseUoaPacket", Napi::Function::New(env, ParseUoaPacket, "parseUoaPacket"));
}
