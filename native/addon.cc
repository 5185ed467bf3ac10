// N-API glue: argument checks, and conversion of toa_sys/toa_parse results to JavaScript values.
// Policy (trust, caching, which kinds to read) lives in TypeScript, not here.
#include <napi.h>

#include <cerrno>
#include <cstring>
#include <vector>

#ifdef _WIN32
#include <ws2tcpip.h>
#else
#include <arpa/inet.h>  // inet_pton for createListener's host
#endif

#include "js_values.h"
#include "toa_parse.h"
#include "toa_sys.h"

// tap_addon.cc: the ACK tap (issue 4).
void RegisterTap(Napi::Env env, Napi::Object exports);

namespace {

using toa::AddressValue;
using toa::IsUint8Array;
using toa::KindTableArgument;
using toa::ToaValue;

// Big enough for an IPv6 header with a few extension headers plus a full TCP header.
constexpr size_t kSynBufferSize = 512;
// A saved SYN never exceeds the MTU of the device it came in on; refuse anything absurd.
constexpr size_t kSynBufferLimit = 65536;

int32_t FdArgument(const Napi::CallbackInfo& info, size_t index) {
  if (info.Length() <= index || !info[index].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), "fd must be a number");
  }
  const int32_t fd = info[index].As<Napi::Number>().Int32Value();
  if (fd < 0) throw Napi::RangeError::New(info.Env(), "fd must be >= 0");
  return fd;
}

Napi::Value PacketValue(Napi::Env env, const toa::Packet& p) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("ok", p.ok);
  if (!p.ok) return o;
  o.Set("src", AddressValue(env, p.src));
  o.Set("dst", AddressValue(env, p.dst));
  o.Set("flags", p.tcp_flags);
  o.Set("payloadLength", p.payload_length);
  if (p.toa.found) o.Set("toa", ToaValue(env, p.toa));
  return o;
}

// setSaveSyn(fd, on) -> errno (0 on success)
Napi::Value SetSaveSyn(const Napi::CallbackInfo& info) {
  const int32_t fd = FdArgument(info, 0);
  const bool on = info.Length() < 2 || info[1].ToBoolean().Value();
  return Napi::Number::New(info.Env(), toa::SetSaveSyn(fd, on));
}

// getSaveSyn(fd) -> 0 | 1, or -errno
Napi::Value GetSaveSyn(const Napi::CallbackInfo& info) {
  bool on = false;
  const int err = toa::GetSaveSyn(FdArgument(info, 0), &on);
  return Napi::Number::New(info.Env(), err != 0 ? -err : (on ? 1 : 0));
}

// What one connection's saved SYN (and, when asked, getpeername) told: read once, parsed once.
struct LookupResult {
  int err = 0;
  bool syn = false;
  toa::Packet packet;
  bool with_name = false;
  int name_err = 0;
  toa::Address name;
};

// One getsockopt per connection; getpeername only when asked (a vendor module may be loaded).
LookupResult DoLookup(int fd, const uint8_t* table, bool with_name) {
  LookupResult r;
  uint8_t stack_buffer[kSynBufferSize];
  std::vector<uint8_t> heap_buffer;
  uint8_t* buffer = stack_buffer;
  size_t length = 0;
  r.err = toa::ReadSavedSyn(fd, buffer, sizeof stack_buffer, &length);
  if (r.err == ENOBUFS) {
    heap_buffer.resize(kSynBufferLimit);
    buffer = heap_buffer.data();
    r.err = toa::ReadSavedSyn(fd, buffer, heap_buffer.size(), &length);
  }
  r.syn = r.err == 0 && length > 0;
  if (r.syn) r.packet = toa::ParsePacket(buffer, length, table);
  r.with_name = with_name;
  if (with_name) r.name_err = toa::PeerName(fd, &r.name);
  return r;
}

// lookup(fd, kindTable, withPeerName) -> { errno, syn, peer?, toa?, name?, nameErrno? }
Napi::Value Lookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int32_t fd = FdArgument(info, 0);
  const uint8_t* table = KindTableArgument(info, 1);
  const LookupResult r = DoLookup(fd, table, info.Length() > 2 && info[2].ToBoolean().Value());
  Napi::Object result = Napi::Object::New(env);
  result.Set("errno", r.err);
  result.Set("syn", r.syn);
  if (r.syn && r.packet.ok) {
    result.Set("peer", AddressValue(env, r.packet.src));
    if (r.packet.toa.found) result.Set("toa", ToaValue(env, r.packet.toa));
  }
  if (r.with_name) {
    if (r.name_err == 0) {
      result.Set("name", AddressValue(env, r.name));
    } else {
      result.Set("nameErrno", r.name_err);
    }
  }
  return result;
}

// The record readSyn() fills (offsets in bytes; multi-byte numbers big-endian). Building
// JavaScript objects and address strings here cost more than the syscall itself; TypeScript
// (lib/syn-record.ts) decodes the few fields it needs.
constexpr size_t kRecordSize = 83;
constexpr uint8_t kRecordSyn = 1, kRecordPeer = 2, kRecordToa = 4, kRecordName = 8, kRecordVip = 16;

void PutAddress(uint8_t* out, const toa::Address& a) {  // family, port (2), bytes (16)
  out[0] = a.family;
  out[1] = static_cast<uint8_t>(a.port >> 8);
  out[2] = static_cast<uint8_t>(a.port);
  std::memcpy(out + 3, a.bytes, 16);
}

// readSyn(fd, kindTable, withPeerName, record: Uint8Array(83)) -> errno (0 when read)
// Each address is 19 bytes: family, port, 16 address bytes.
//   [0] flags  [1] peer  [20] toa kind  [21] toa length  [22] toa client  [41] vid (4)
//   [45] vip  [64] getpeername
Napi::Value ReadSyn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int32_t fd = FdArgument(info, 0);
  const uint8_t* table = KindTableArgument(info, 1);
  const bool with_name = info.Length() > 2 && info[2].ToBoolean().Value();
  if (!IsUint8Array(info, 3) || info[3].As<Napi::Uint8Array>().ByteLength() < kRecordSize) {
    throw Napi::TypeError::New(env, "record must be a Uint8Array of 83 bytes");
  }
  uint8_t* out = info[3].As<Napi::Uint8Array>().Data();
  const LookupResult r = DoLookup(fd, table, with_name);
  uint8_t flags = 0;
  if (r.syn) flags |= kRecordSyn;
  if (r.syn && r.packet.ok) {
    flags |= kRecordPeer;
    PutAddress(out + 1, r.packet.src);
    if (r.packet.toa.found) {
      const toa::Toa& t = r.packet.toa;
      flags |= kRecordToa;
      out[20] = t.kind;
      out[21] = t.length;
      PutAddress(out + 22, t.client);
      if (t.vip.family != 0) {
        flags |= kRecordVip;
        out[41] = static_cast<uint8_t>(t.vid >> 24);
        out[42] = static_cast<uint8_t>(t.vid >> 16);
        out[43] = static_cast<uint8_t>(t.vid >> 8);
        out[44] = static_cast<uint8_t>(t.vid);
        PutAddress(out + 45, t.vip);
      }
    }
  }
  if (with_name && r.name_err == 0) {
    flags |= kRecordName;
    PutAddress(out + 64, r.name);
  }
  out[0] = flags;
  return Napi::Number::New(env, r.err);
}

// parse(bytes, kindTable) -> { ok, src, dst, flags, payloadLength, toa? }
Napi::Value Parse(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IsUint8Array(info, 0)) {
    throw Napi::TypeError::New(env, "packet must be a Uint8Array or Buffer");
  }
  auto bytes = info[0].As<Napi::Uint8Array>();
  const uint8_t* table = KindTableArgument(info, 1);
  return PacketValue(env, toa::ParsePacket(bytes.Data(), bytes.ByteLength(), table));
}

// createListener(host, port, backlog, reusePort, ipv6Only) -> fd, or -errno
Napi::Value CreateListener(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsNumber()) {
    throw Napi::TypeError::New(env, "createListener(host, port, backlog, reusePort, ipv6Only)");
  }
  const std::string host = info[0].As<Napi::String>().Utf8Value();
  toa::ListenOptions options;
  if (inet_pton(AF_INET6, host.c_str(), options.address.bytes) == 1) {
    options.address.family = 6;
  } else if (inet_pton(AF_INET, host.c_str(), options.address.bytes) == 1) {
    options.address.family = 4;
  } else {
    throw Napi::TypeError::New(env, "host must be an IP address");
  }
  options.address.port = static_cast<uint16_t>(info[1].As<Napi::Number>().Uint32Value());
  options.backlog = info[2].As<Napi::Number>().Int32Value();
  options.reuse_port = info[3].ToBoolean().Value();
  options.ipv6_only = info[4].ToBoolean().Value();
  int fd = -1;
  const int err = toa::CreateListener(options, &fd);
  return Napi::Number::New(env, err != 0 ? -err : fd);
}

// isTcpListener(fd) -> boolean, or -errno
Napi::Value IsTcpListener(const Napi::CallbackInfo& info) {
  bool listening = false;
  const int err = toa::IsTcpListener(FdArgument(info, 0), &listening);
  if (err != 0) return Napi::Number::New(info.Env(), -err);
  return Napi::Boolean::New(info.Env(), listening);
}

// defaultKindTable() -> Uint8Array(256): the native parser's own idea of the defaults.
Napi::Value DefaultKindTable(const Napi::CallbackInfo& info) {
  auto table = Napi::Uint8Array::New(info.Env(), toa::kKindTableSize);
  toa::DefaultKindTable(table.Data());
  return table;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("savedSynSupported", Napi::Boolean::New(env, toa::SavedSynSupported()));
  exports.Set("setSaveSyn", Napi::Function::New(env, SetSaveSyn, "setSaveSyn"));
  exports.Set("getSaveSyn", Napi::Function::New(env, GetSaveSyn, "getSaveSyn"));
  exports.Set("lookup", Napi::Function::New(env, Lookup, "lookup"));
  exports.Set("readSyn", Napi::Function::New(env, ReadSyn, "readSyn"));
  exports.Set("parse", Napi::Function::New(env, Parse, "parse"));
  exports.Set("createListener", Napi::Function::New(env, CreateListener, "createListener"));
  exports.Set("isTcpListener", Napi::Function::New(env, IsTcpListener, "isTcpListener"));
  exports.Set("defaultKindTable", Napi::Function::New(env, DefaultKindTable, "defaultKindTable"));
  RegisterTap(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(node_toa, Init)
