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
#include "tap_sockets.h"

namespace {

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

class TapWrap : public Napi::ObjectWrap<TapWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Tap",
                       {
                           InstanceMethod<&TapWrap::Open>("open"),
                           InstanceMethod<&TapWrap::SetPorts>("setPorts"),
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
  }

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

  // setPorts(ports: number[]) -> errno
  Napi::Value SetPorts(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "ports must be an array");
    auto list = info[0].As<Napi::Array>();
    if (list.Length() > toa::kMaxTapPorts) throw Napi::RangeError::New(env, "too many ports for one tap");
    std::vector<uint16_t> ports;
    for (uint32_t i = 0; i < list.Length(); i++) {
      Napi::Value v = list.Get(i);
      const double port = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
      if (!(port >= 1 && port <= 65535)) throw Napi::RangeError::New(env, "ports must be 1-65535");
      ports.push_back(static_cast<uint16_t>(port));
    }
    return Napi::Number::New(env, tap(env).SetPorts(ports));
  }

  // drain(kindTable) -> packets read
  Napi::Value Drain(const Napi::CallbackInfo& info) {
    const uint8_t* table = toa::KindTableArgument(info, 0);
    const size_t n = tap(info.Env()).Drain(table, 1 << 16);
    return Napi::Number::New(info.Env(), static_cast<double>(n));
  }

  // lookup(fd, kindTable, peerAddress?, peerPort?) -> { peer, options, packet } | null, or -errno
  Napi::Value Lookup(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const int fd = toa::FdArgument(info, 0);
    const uint8_t* table = toa::KindTableArgument(info, 1);
    toa::Address peer;
    const toa::Address* known = nullptr;
    if (info.Length() > 3 && info[2].IsString() && info[3].IsNumber()) {
      peer = toa::AddressArgument(info, 2, "peer address");
      peer.port = static_cast<uint16_t>(info[3].As<Napi::Number>().Uint32Value());
      known = &peer;
    }
    bool found = false;
    toa::TapHit hit;
    const int err = tap(env).Lookup(fd, table, known, &found, &hit);
    if (err != 0) return Napi::Number::New(env, -err);
    if (!found) return env.Null();
    Napi::Object result = Napi::Object::New(env);
    result.Set("peer", AddressValue(env, hit.peer));
    result.Set("options", ToaOptionsValue(env, hit.options));
    result.Set("packet", hit.data ? "data" : "ack");
    return result;
  }

 public:
  // testing.offer(tap, packet, kindTable) -> parsed as TCP. Feeds one packet (IP header first) to
  // the table as if the tap had read it, without the filter: the table's own tests use it.
  static Napi::Value Offer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "tap must be a Tap");
    Napi::Object object = info[0].As<Napi::Object>();
    // The Tap class of this environment (passed as the function's data): no other wrapped object
    // may be taken for a tap.
    const auto* tap_class = static_cast<const Napi::FunctionReference*>(info.Data());
    if (!object.InstanceOf(tap_class->Value())) throw Napi::TypeError::New(env, "tap must be a Tap");
    TapWrap* wrap = Unwrap(object);
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

// probePacketSocket() -> errno: 0 when this process may open packet sockets (CAP_NET_RAW).
Napi::Value ProbePacketSocket(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), toa::ProbePacketSocket());
}

}  // namespace

// Called from addon.cc's Init.
void RegisterTap(Napi::Env env, Napi::Object exports, Napi::Object testing) {
  Napi::Function tap_class = TapWrap::Define(env);
  exports.Set("tapSupported", Napi::Boolean::New(env, toa::TapSupported()));
  exports.Set("Tap", tap_class);
  exports.Set("probePacketSocket", Napi::Function::New(env, ProbePacketSocket, "probePacketSocket"));
  auto* reference = new Napi::FunctionReference(Napi::Persistent(tap_class));
  env.AddCleanupHook([reference]() { delete reference; });
  testing.Set("offer", Napi::Function::New(env, TapWrap::Offer, "offer", reference));
}
