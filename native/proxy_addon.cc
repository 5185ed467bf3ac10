// N-API glue for the PROXY protocol parser (proxy_parse.h): argument checks and the conversion of
// its struct to the JavaScript object lib/addon/native.ts describes (NativeProxyHeader). What to
// do with a header (trust, waiting, refusing) is decided in TypeScript.
#include <napi.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include "js_values.h"
#include "proxy_parse.h"
#include "proxy_sys.h"

namespace {

// snprintf, not std::to_string: libc++'s to_string drags its locale-aware number code (strtol,
// wcstold, swprintf, ...) into every prebuild for one error message.
[[noreturn]] void ThrowMaxSizeRange(Napi::Env env, int32_t max_size) {
  char message[64];
  std::snprintf(message, sizeof message, "maxSize must be an integer >= 16, got %d", static_cast<int>(max_size));
  throw Napi::RangeError::New(env, message);
}

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

// The record a bound reader fills (lib/proxy-protocol/record.ts decodes it with proxyRecordLayout): a few
// bytes written in place, where an object per connection costs more than the syscalls.
namespace layout {
constexpr size_t kStatus = 0;
constexpr size_t kReason = 1;
constexpr size_t kVersion = 2;
constexpr size_t kCommand = 3;  // ProxyCommand
constexpr size_t kFamily = 4;   // ProxyFamily
constexpr size_t kFlags = 5;
constexpr size_t kLength = 8;       // u32 big-endian
constexpr size_t kSource = 12;      // 16 address bytes (IPv4 in the first 4), then the port
constexpr size_t kDestination = 30; // the same
constexpr size_t kSize = 48;
constexpr uint8_t kFlagAddresses = 1;
constexpr uint8_t kFlagTlvs = 2;  // TLVs or an SSL TLV: the caller keeps the bytes and parses them again
constexpr uint8_t kFlagCrc = 4;
}  // namespace layout

// What a reader returns besides a ProxyStatus: nothing decided (no bytes yet, a header not whole
// yet, the peer closed, an error the stream will report), so the caller reads the stream as
// before; and a header taken only in part (the socket is unusable).
constexpr int32_t kReaderUndecided = -1;
constexpr int32_t kReaderBroken = -2;

struct ProxyReader {
  Napi::Reference<Napi::Uint8Array> record;
  Napi::Reference<Napi::Uint8Array> buffer;
  uint8_t* record_data;
  uint8_t* buffer_data;
  size_t capacity;
};

void PutEndpoint(uint8_t* at, const toa::ProxyEndpoint& e) {
  std::memcpy(at, e.bytes, sizeof e.bytes);
  at[16] = static_cast<uint8_t>(e.port >> 8);
  at[17] = static_cast<uint8_t>(e.port);
}

// The record for every status (the addresses only when there are some).
void WriteProxyRecord(const toa::ProxyHeader& h, uint8_t* r) {
  r[layout::kStatus] = h.status;
  r[layout::kReason] = h.reason;
  r[layout::kVersion] = h.version;
  r[layout::kCommand] = h.command;
  r[layout::kFamily] = h.family;
  r[layout::kFlags] = static_cast<uint8_t>((h.has_addresses ? layout::kFlagAddresses : 0) |
                                           (h.tlv_count > 0 || h.has_ssl ? layout::kFlagTlvs : 0) |
                                           (h.crc_present ? layout::kFlagCrc : 0));
  r[layout::kLength] = static_cast<uint8_t>(h.length >> 24);
  r[layout::kLength + 1] = static_cast<uint8_t>(h.length >> 16);
  r[layout::kLength + 2] = static_cast<uint8_t>(h.length >> 8);
  r[layout::kLength + 3] = static_cast<uint8_t>(h.length);
  if (h.has_addresses) {
    PutEndpoint(r + layout::kSource, h.source);
    PutEndpoint(r + layout::kDestination, h.destination);
  }
}

// reader(fd, maxSize) -> ProxyStatus, or kReaderUndecided / kReaderBroken. Fills the record for
// every status; the header's bytes are at the start of the buffer when it is ok.
Napi::Value ReadProxyBound(const Napi::CallbackInfo& info) {
  const auto* reader = static_cast<const ProxyReader*>(info.Data());
  Napi::Env env = info.Env();
  int32_t fd = -1;
  int32_t max_size = 0;
  if (info.Length() < 2 || napi_get_value_int32(env, info[0], &fd) != napi_ok ||
      napi_get_value_int32(env, info[1], &max_size) != napi_ok) {
    throw Napi::TypeError::New(env, "reader(fd, maxSize): two numbers");
  }
  if (fd < 0) throw Napi::RangeError::New(env, "fd must be >= 0");
  if (max_size < static_cast<int32_t>(toa::kProxyV2FixedLength)) {
    ThrowMaxSizeRange(env, max_size);
  }
  const size_t bound = static_cast<size_t>(max_size) > toa::kProxyV2MaxLength ? toa::kProxyV2MaxLength
                                                                             : static_cast<size_t>(max_size);
  toa::ProxyHeader h;
  size_t peeked = 0;
  const int err = toa::PeekProxyHeader(fd, reader->buffer_data, reader->capacity, bound, &h, &peeked);
  int32_t result;
  if (h.status == toa::kProxyOk && err != 0) result = kReaderBroken;
  else if (err != 0 || peeked == 0 || h.status == toa::kProxyIncomplete) result = kReaderUndecided;
  else result = h.status;
  WriteProxyRecord(h, reader->record_data);
  return Napi::Number::New(env, result);
}

// makeProxyReader(record, buffer) -> reader(fd, maxSize). The record: proxyRecordLayout.size
// bytes; the buffer: where peeked bytes go (its length bounds the peek; >= 16). Both are held by
// references, so their memory stays put as long as the function lives.
Napi::Value MakeProxyReader(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IsUint8Array(info, 0) || info[0].As<Napi::Uint8Array>().ByteLength() < layout::kSize) {
    throw Napi::TypeError::New(env, "record must be a Uint8Array of proxyRecordLayout.size bytes");
  }
  if (!IsUint8Array(info, 1) || info[1].As<Napi::Uint8Array>().ByteLength() < toa::kProxyV2FixedLength) {
    throw Napi::TypeError::New(env, "buffer must be a Uint8Array of at least 16 bytes");
  }
  auto* reader = new ProxyReader();
  reader->record = Napi::Persistent(info[0].As<Napi::Uint8Array>());
  reader->buffer = Napi::Persistent(info[1].As<Napi::Uint8Array>());
  reader->record_data = info[0].As<Napi::Uint8Array>().Data();
  reader->buffer_data = info[1].As<Napi::Uint8Array>().Data();
  reader->capacity = info[1].As<Napi::Uint8Array>().ByteLength();
  Napi::Function fn = Napi::Function::New(env, ReadProxyBound, "readProxyHeader", reader);
  fn.AddFinalizer([](Napi::Env, ProxyReader* r) { delete r; }, reader);
  return fn;
}

struct ProxyParser {
  Napi::Reference<Napi::Uint8Array> record;
  uint8_t* record_data;
};

// parser(data, maxSize) -> ProxyStatus, the record filled: parseProxyHeader() without an object.
Napi::Value ParseProxyBound(const Napi::CallbackInfo& info) {
  const auto* parser = static_cast<const ProxyParser*>(info.Data());
  Napi::Env env = info.Env();
  size_t length = 0;
  const uint8_t* data = BytesArgument(info, 0, &length);
  int32_t max_size = 0;
  if (info.Length() < 2 || napi_get_value_int32(env, info[1], &max_size) != napi_ok) {
    throw Napi::TypeError::New(env, "maxSize must be a number");
  }
  if (max_size < static_cast<int32_t>(toa::kProxyV2FixedLength)) {
    ThrowMaxSizeRange(env, max_size);
  }
  const size_t bound = static_cast<size_t>(max_size) > toa::kProxyV2MaxLength ? toa::kProxyV2MaxLength
                                                                             : static_cast<size_t>(max_size);
  toa::ProxyHeader h;
  toa::ParseProxyHeader(data, length, bound, &h);
  WriteProxyRecord(h, parser->record_data);
  return Napi::Number::New(env, h.status);
}

// makeProxyParser(record) -> parser(data, maxSize)
Napi::Value MakeProxyParser(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IsUint8Array(info, 0) || info[0].As<Napi::Uint8Array>().ByteLength() < layout::kSize) {
    throw Napi::TypeError::New(env, "record must be a Uint8Array of proxyRecordLayout.size bytes");
  }
  auto* parser = new ProxyParser();
  parser->record = Napi::Persistent(info[0].As<Napi::Uint8Array>());
  parser->record_data = info[0].As<Napi::Uint8Array>().Data();
  Napi::Function fn = Napi::Function::New(env, ParseProxyBound, "parseProxyHeader", parser);
  fn.AddFinalizer([](Napi::Env, ProxyParser* p) { delete p; }, parser);
  return fn;
}

Napi::Object ProxyRecordLayout(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  const auto set = [&](const char* name, size_t value) { o.Set(name, static_cast<double>(value)); };
  set("size", layout::kSize);
  set("status", layout::kStatus);
  set("reason", layout::kReason);
  set("version", layout::kVersion);
  set("command", layout::kCommand);
  set("family", layout::kFamily);
  set("flags", layout::kFlags);
  set("length", layout::kLength);
  set("source", layout::kSource);
  set("destination", layout::kDestination);
  set("flagAddresses", layout::kFlagAddresses);
  set("flagTlvs", layout::kFlagTlvs);
  set("flagCrc", layout::kFlagCrc);
  set("commandLocal", toa::kProxyCommandLocal);
  set("familyInet6", toa::kProxyFamilyInet6);
  set("undecided", static_cast<size_t>(-kReaderUndecided));
  set("broken", static_cast<size_t>(-kReaderBroken));
  Napi::Array reasons = Napi::Array::New(env, toa::kReasonCount);
  for (uint32_t i = 0; i < toa::kReasonCount; i++) reasons.Set(i, toa::ProxyReasonText(static_cast<toa::ProxyReason>(i)));
  o.Set("reasons", reasons);
  return o;
}

}  // namespace

// Called from addon.cc's Init.
void RegisterProxy(Napi::Env env, Napi::Object exports, Napi::Object testing) {
  exports.Set("parseProxyHeader", Napi::Function::New(env, ParseProxyHeader, "parseProxyHeader"));
  exports.Set("makeProxyReader", Napi::Function::New(env, MakeProxyReader, "makeProxyReader"));
  exports.Set("makeProxyParser", Napi::Function::New(env, MakeProxyParser, "makeProxyParser"));
  exports.Set("proxyRecordLayout", ProxyRecordLayout(env));
  testing.Set("proxyCrc32c", Napi::Function::New(env, ProxyCrc32c, "proxyCrc32c"));
}
