// N-API glue for the ACK tap (tap_sockets.h, tap_table.h), the only N-API file of the tap. Each
// JavaScript Tap object owns its native Tap, so there is no per-process state: worker threads and
// several copies of the addon stay apart.
#include <napi.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#ifdef _WIN32
#include <ws2tcpip.h>
#else
#include <arpa/inet.h>
#endif

#include "js_values.h"
#include "tap_addon.h"
#include "toa_sys.h"
#include "sockops.h"
#include "tap_sockets.h"

namespace {

// Marks the objects this class made (napi_type_tag_object), so no other wrapped object is taken
// for a tap, without keeping the class anywhere.
constexpr napi_type_tag kTapTag = {0x6e6f64652d746f61ULL, 0x2e7461702e763301ULL};

using toa::AddressValue;
using toa::ToaOptionsValue;

uint32_t Unsigned(const Napi::CallbackInfo& info, size_t index, const char* name, uint32_t min,
                  uint32_t max) {
  if (info.Length() <= index || !info[index].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  }
  const double value = info[index].As<Napi::Number>().DoubleValue();
  if (!(value >= min && value <= max)) {
    throw Napi::RangeError::New(info.Env(), std::string(name) + " is out of range");
  }
  return static_cast<uint32_t>(value);
}

// `sources` at `index`: the trusted ranges as packed records of 18 bytes (family 4|6, prefix bits,
// 16 address bytes); null or absent: every source passes.
void SourcesArgument(const Napi::CallbackInfo& info, size_t index, toa::FilterSpec* spec) {
  Napi::Env env = info.Env();
  if (info.Length() <= index || info[index].IsNull() || info[index].IsUndefined()) return;
  if (!toa::IsUint8Array(info, index)) throw Napi::TypeError::New(env, "sources must be a Uint8Array or null");
  auto bytes = info[index].As<Napi::Uint8Array>();
  constexpr size_t kRecord = 18;
  if (bytes.ByteLength() % kRecord != 0 || bytes.ByteLength() / kRecord > toa::kMaxTapSources) {
    throw Napi::RangeError::New(env, "sources must hold at most 64 records of 18 bytes");
  }
  spec->check_sources = true;
  for (size_t o = 0; o < bytes.ByteLength(); o += kRecord) {
    toa::SourceRange r;
    r.family = bytes[o];
    r.prefix = bytes[o + 1];
    if ((r.family != 4 && r.family != 6) || r.prefix > (r.family == 4 ? 32 : 128)) {
      throw Napi::RangeError::New(env, "a source range must be family 4 (prefix 0-32) or 6 (prefix 0-128)");
    }
    std::memcpy(r.bytes, bytes.Data() + o + 2, 16);
    spec->sources.push_back(r);
  }
}

class TapWrap : public Napi::ObjectWrap<TapWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Tap",
                       {
                           InstanceMethod<&TapWrap::Open>("open"),
                           InstanceMethod<&TapWrap::OpenSockops>("openSockops"),
                           InstanceMethod<&TapWrap::SetFilter>("setFilter"),
                           InstanceMethod<&TapWrap::Drain>("drain"),
                           InstanceMethod<&TapWrap::Lookup>("lookup"),
                           InstanceMethod<&TapWrap::Stats>("stats"),
                           InstanceMethod<&TapWrap::Close>("close"),
                       });
  }

  // new Tap(capacity, maxAgeMs, receiveBuffer, ringFrames?): ringFrames 0 reads with recvmmsg.
  explicit TapWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TapWrap>(info) {
    toa::TapOptions options;
    options.capacity = Unsigned(info, 0, "capacity", 1, 1u << 24);
    // The same bounds as lib/tap/options.ts, which names the option when they are broken.
    options.max_age_ms = Unsigned(info, 1, "maxAgeMs", 100, 3600000u);
    options.receive_buffer = static_cast<int>(Unsigned(info, 2, "receiveBuffer", 65536, 1u << 30));
    if (info.Length() > 3 && !info[3].IsUndefined()) {
      options.ring_frames = Unsigned(info, 3, "ringFrames", 0, 1u << 20);
    }
    tap_ = std::make_unique<toa::Tap>(options);
    info.This().As<Napi::Object>().TypeTag(&kTapTag);
  }

  static TapWrap* Of(Napi::Env env, Napi::Value value) {
    if (!value.IsObject() || !value.As<Napi::Object>().CheckTypeTag(&kTapTag)) {
      throw Napi::TypeError::New(env, "tap must be a Tap");
    }
    return Unwrap(value.As<Napi::Object>());
  }

  std::unique_ptr<toa::Tap>& slot() { return tap_; }

 private:
  toa::Tap& tap(Napi::Env env) {
    if (!tap_) throw Napi::Error::New(env, "the tap is closed");
    return *tap_;
  }

  // open(listenerFd) -> { errno, syscall?, netns }: listenerFd -1 means this thread's namespace.
  Napi::Value Open(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "fd must be a number");
    const int fd = info[0].As<Napi::Number>().Int32Value();
    const char* failed_call = nullptr;
    const int err = tap(env).Open(fd < 0 ? -1 : fd, &failed_call);
    Napi::Object result = Napi::Object::New(env);
    result.Set("errno", err);
    if (err != 0 && failed_call != nullptr) result.Set("syscall", failed_call);
    result.Set("netns", Napi::Number::New(env, static_cast<double>(tap(env).netns())));
    result.Set("ring", tap(env).ring());
    return result;
  }

  // openSockops(listenerFd, port, sources?) -> { errno, syscall?, log?, netns }: reads through the
  // server's sock_ops program instead of packet sockets (sockops.h); `sources` as setFilter's (the
  // senders whose syncookie SYNs it keeps); `log` is the verifier's when it refused.
  Napi::Value OpenSockops(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "fd must be a number");
    const int fd = info[0].As<Napi::Number>().Int32Value();
    const uint32_t port = Unsigned(info, 1, "port", 1, 65535);
    toa::FilterSpec trust;
    SourcesArgument(info, 2, &trust);
    const char* failed_call = nullptr;
    std::string log;
    const int err = tap(env).OpenSockops(fd < 0 ? -1 : fd, static_cast<uint16_t>(port), trust, &failed_call, &log);
    Napi::Object result = Napi::Object::New(env);
    result.Set("errno", err);
    if (err != 0 && failed_call != nullptr) result.Set("syscall", failed_call);
    if (err != 0 && !log.empty()) result.Set("log", log);
    result.Set("netns", Napi::Number::New(env, static_cast<double>(tap(env).netns())));
    return result;
  }

  // setFilter(ports: number[], sources?: Uint8Array | null) -> errno. `sources`: the trusted ranges
  // as packed records of 18 bytes (family 4|6, prefix bits, 16 address bytes); null or absent:
  // every source passes.
  Napi::Value SetFilter(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "ports must be an array");
    auto list = info[0].As<Napi::Array>();
    if (list.Length() > toa::kMaxTapPorts) throw Napi::RangeError::New(env, "too many ports for one tap");
    toa::FilterSpec spec;
    for (uint32_t i = 0; i < list.Length(); i++) {
      Napi::Value v = list.Get(i);
      const double port = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
      if (!(port >= 1 && port <= 65535)) throw Napi::RangeError::New(env, "ports must be 1-65535");
      spec.ports.push_back(static_cast<uint16_t>(port));
    }
    SourcesArgument(info, 1, &spec);
    return Napi::Number::New(env, tap(env).SetFilter(spec));
  }

  // drain(kindTable) -> packets read
  Napi::Value Drain(const Napi::CallbackInfo& info) {
    const uint8_t* table = toa::KindTableArgument(info, 0);
    toa::Tap& t = tap(info.Env());
    const size_t n = t.Drain(table, 1 << 16);
    return Napi::Number::New(info.Env(), static_cast<double>(n));
  }

  // lookup(fd, kindTable, nextSeq?) -> { peer, options, packet } | null, or -errno: what the
  // resolver's reader asks (tap_sockets.h Claim), for the tests, with the sequence number a saved
  // SYN would give passed in (absent: as without a saved SYN).
  Napi::Value Lookup(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const int fd = toa::FdArgument(info, 0);
    const uint8_t* table = toa::KindTableArgument(info, 1);
    toa::Packet syn;
    const toa::Packet* known = nullptr;
    if (info.Length() > 2 && info[2].IsNumber()) {
      // A stand-in saved SYN: the socket's own ends, the caller's sequence number - 1.
      int e = toa::PeerName(fd, &syn.src);
      if (e == 0) e = toa::SockName(fd, &syn.dst);
      if (e != 0) return Napi::Number::New(env, -e);
      syn.ok = true;
      syn.seq = info[2].As<Napi::Number>().Uint32Value() - 1;
      known = &syn;
    }
    toa::TapHit hit;
    const int err = tap(env).Claim(fd, known, table, &hit);
    if (err != 0) return Napi::Number::New(env, -err);
    if (!hit.found) return env.Null();
    Napi::Object result = Napi::Object::New(env);
    result.Set("peer", AddressValue(env, hit.peer));
    result.Set("options", ToaOptionsValue(env, hit.options));
    result.Set("packet", hit.data ? "data" : "ack");
    if (hit.syn_found) result.Set("synOptions", ToaOptionsValue(env, hit.syn_options));
    return result;
  }

 public:
  // testing.offer(tap, packet, kindTable) -> parsed as TCP. Feeds one packet (IP header first) to
  // the table as if the tap had read it, without the filter: the table's own tests use it.
  static Napi::Value Offer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    TapWrap* wrap = Of(env, info.Length() > 0 ? info[0] : env.Undefined());
    if (info.Length() < 2 || !info[1].IsTypedArray()) {
      throw Napi::TypeError::New(env, "packet must be a Uint8Array or Buffer");
    }
    auto bytes = info[1].As<Napi::Uint8Array>();
    const uint8_t* table = toa::KindTableArgument(info, 2);
    const bool ok = wrap->tap(env).table().Offer(bytes.Data(), bytes.ByteLength(), table, toa::MonotonicMs());
    return Napi::Boolean::New(env, ok);
  }

 private:
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    toa::Tap& t = tap(env);
    t.UpdateDrops();
    const toa::TapCounters& c = t.table().counters();
    Napi::Object o = Napi::Object::New(env);
    const auto set = [&](const char* name, uint64_t value) {
      o.Set(name, Napi::Number::New(env, static_cast<double>(value)));
    };
    // The names and their order come from the one list in tap_table.h.
#define TOA_TAP_SET_COUNTER(field, name) set(name, c.field);
#define TOA_TAP_SET_TABLE(method, name) set(name, t.table().method());
    TOA_TAP_STATS(TOA_TAP_SET_COUNTER, TOA_TAP_SET_TABLE)
#undef TOA_TAP_SET_COUNTER
#undef TOA_TAP_SET_TABLE
    return o;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    tap_.reset();
    return info.Env().Undefined();
  }

  std::unique_ptr<toa::Tap> tap_;
};

// probeSockops(hold?) -> { errno, syscall?, log? }: loads the server's sock_ops program and tries
// its attachment (once per process; tap_sockets.h OpenSockops then watches ports, attaching it
// while one is watched). hold: keep it attached for a tap that opens once its server listens
// (sockops.h SockopsLoad).
Napi::Value ProbeSockops(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* failed_call = nullptr;
  std::string log;
  const bool hold = info.Length() > 0 && info[0].IsBoolean() && info[0].As<Napi::Boolean>().Value();
  const int err = toa::SockopsLoad(&failed_call, &log, hold);
  Napi::Object result = Napi::Object::New(env);
  result.Set("errno", err);
  if (err != 0 && failed_call != nullptr) result.Set("syscall", failed_call);
  if (err != 0 && !log.empty()) result.Set("log", log);
  return result;
}

// probePacketSocket() -> errno: 0 when this process may open packet sockets (CAP_NET_RAW).
Napi::Value ProbePacketSocket(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), toa::ProbePacketSocket());
}

// testing.sockopsStorage(fd) -> errno: 0 when the sock_ops program keeps socket storage for the
// connection of `fd`, ENOENT when it keeps none.
Napi::Value SockopsStorage(const Napi::CallbackInfo& info) {
  toa_sockops_conn conn;
  return Napi::Number::New(info.Env(), toa::SockopsLookup(toa::FdArgument(info, 0), &conn));
}

}  // namespace

std::unique_ptr<toa::Tap>* TapSlot(Napi::Env env, Napi::Value value) { return &TapWrap::Of(env, value)->slot(); }

// Called from addon.cc's Init.
void RegisterTap(Napi::Env env, Napi::Object exports, Napi::Object testing) {
  exports.Set("tapSupported", Napi::Boolean::New(env, toa::TapSupported()));
  exports.Set("Tap", TapWrap::Define(env));
  exports.Set("probePacketSocket", Napi::Function::New(env, ProbePacketSocket, "probePacketSocket"));
  exports.Set("probeSockops", Napi::Function::New(env, ProbeSockops, "probeSockops"));
  testing.Set("offer", Napi::Function::New(env, TapWrap::Offer, "offer"));
  testing.Set("sockopsStorage", Napi::Function::New(env, SockopsStorage, "sockopsStorage"));
}
