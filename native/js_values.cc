#include "js_values.h"

#ifdef _WIN32
#include <ws2tcpip.h>
#else
#include <arpa/inet.h>
#endif

namespace toa {

Napi::Object AddressValue(Napi::Env env, const Address& a) {
  char text[INET6_ADDRSTRLEN] = {0};
  inet_ntop(a.family == 6 ? AF_INET6 : AF_INET, a.bytes, text, sizeof text);
  Napi::Object o = Napi::Object::New(env);
  o.Set("family", a.family == 6 ? "IPv6" : "IPv4");
  o.Set("address", text);
  o.Set("port", a.port);
  return o;
}

Napi::Object ToaValue(Napi::Env env, const Toa& t) {
  Napi::Object o = AddressValue(env, t.client);
  o.Set("kind", t.kind);
  o.Set("length", t.length);
  if (t.vip.family != 0) {
    o.Set("vid", t.vid);
    o.Set("vip", AddressValue(env, t.vip));
  }
  return o;
}

bool IsUint8Array(const Napi::CallbackInfo& info, size_t index) {
  return info.Length() > index && info[index].IsTypedArray() &&
         info[index].As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array;
}

const uint8_t* KindTableArgument(const Napi::CallbackInfo& info, size_t index) {
  if (!IsUint8Array(info, index)) {
    throw Napi::TypeError::New(info.Env(), "kind table must be a Uint8Array");
  }
  auto table = info[index].As<Napi::Uint8Array>();
  if (table.ByteLength() != kKindTableSize) {
    throw Napi::RangeError::New(info.Env(), "kind table must hold 256 bytes");
  }
  return table.Data();
}

}  // namespace toa
