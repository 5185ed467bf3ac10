#include "js_values.h"

#ifdef _WIN32
#include <ws2tcpip.h>
#else
#include <arpa/inet.h>
#endif

#include <string>

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

Napi::Object ToaOptionValue(Napi::Env env, const ToaOption& t) {
  Napi::Object o = AddressValue(env, t.client);
  o.Set("kind", t.kind);
  o.Set("length", t.length);
  o.Set("layout", t.layout);
  o.Set("status", t.status);
  if (t.layout == kLayoutVtoa) {
    o.Set("vid", t.vid);
    o.Set("vip", AddressValue(env, t.vip));
  }
  return o;
}

Napi::Array ToaOptionsValue(Napi::Env env, const ToaOptionList& list) {
  Napi::Array a = Napi::Array::New(env, list.count);
  for (uint32_t i = 0; i < list.count; i++) a.Set(i, ToaOptionValue(env, list.options[i]));
  return a;
}

int32_t FdArgument(const Napi::CallbackInfo& info, size_t index) {
  if (info.Length() <= index || !info[index].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), "fd must be a number");
  }
  const int32_t fd = info[index].As<Napi::Number>().Int32Value();
  if (fd < 0) throw Napi::RangeError::New(info.Env(), "fd must be >= 0");
  return fd;
}

Address AddressArgument(const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (info.Length() <= index || !info[index].IsString()) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be an IP address");
  }
  const std::string text = info[index].As<Napi::String>().Utf8Value();
  Address a;
  if (inet_pton(AF_INET6, text.c_str(), a.bytes) == 1) {
    a.family = 6;
  } else if (inet_pton(AF_INET, text.c_str(), a.bytes) == 1) {
    a.family = 4;
  } else {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be an IP address");
  }
  return a;
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
