// N-API glue: argument checks, and conversion of toa_sys/toa_parse results to JavaScript values.
// Policy (trust, caching, which kinds to read) lives in TypeScript, not here.
#include <napi.h>

#include <cerrno>
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

// lookup(fd, kindTable, withPeerName) -> { errno, syn, peer?, toa?, name?, nameErrno? }
// One getsockopt per connection; getpeername only when asked (a vendor module may be loaded).
Napi::Value Lookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int32_t fd = FdArgument(info, 0);
  const uint8_t* table = KindTableArgument(info, 1);
  const bool with_name = info.Length() > 2 && info[2].ToBoolean().Value();

  uint8_t stack_buffer[kSynBufferSize];
  std::vector<uint8_t> heap_buffer;
  uint8_t* buffer = stack_buffer;
  size_t length = 0;
  int err = toa::ReadSavedSyn(fd, buffer, sizeof stack_buffer, &length);
  if (err == ENOBUFS) {
    heap_buffer.resize(kSynBufferLimit);
    buffer = heap_buffer.data();
    err = toa::ReadSavedSyn(fd, buffer, heap_buffer.size(), &length);
  }

  Napi::Object result = Napi::Object::New(env);
  result.Set("errno", err);
  result.Set("syn", err == 0 && length > 0);
  if (err == 0 && length > 0) {
    const toa::Packet packet = toa::ParsePacket(buffer, length, table);
    if (packet.ok) {
      result.Set("peer", AddressValue(env, packet.src));
      if (packet.toa.found) result.Set("toa", ToaValue(env, packet.toa));
    }
  }
  if (with_name) {
    toa::Address name;
    const int name_err = toa::PeerName(fd, &name);
    if (name_err == 0) {
      result.Set("name", AddressValue(env, name));
    } else {
      result.Set("nameErrno", name_err);
    }
  }
  return result;
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
  exports.Set("parse", Napi::Function::New(env, Parse, "parse"));
  exports.Set("createListener", Napi::Function::New(env, CreateListener, "createListener"));
  exports.Set("isTcpListener", Napi::Function::New(env, IsTcpListener, "isTcpListener"));
  exports.Set("defaultKindTable", Napi::Function::New(env, DefaultKindTable, "defaultKindTable"));
  RegisterTap(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(node_toa, Init)
