// Conversions shared by the two N-API glue units (addon.cc, tap_addon.cc): argument checks and
// the JavaScript shapes of addresses and options, so the SYN path and the tap answer alike.
#ifndef NODE_TOA_JS_VALUES_H
#define NODE_TOA_JS_VALUES_H

#include <napi.h>

#include "toa_parse.h"

namespace toa {

// { family: 'IPv4' | 'IPv6', address, port }
Napi::Object AddressValue(Napi::Env env, const Address& a);
// The client's AddressValue plus { kind, length, layout, status } (and { vid, vip } for VTOA).
Napi::Object ToaOptionValue(Napi::Env env, const ToaOption& t);
// The options of a list, in order.
Napi::Array ToaOptionsValue(Napi::Env env, const ToaOptionList& list);

// A file descriptor argument: TypeError unless a number, RangeError when negative.
int32_t FdArgument(const Napi::CallbackInfo& info, size_t index);
// An IP address string argument (the port given apart); TypeError when it is not one.
Address AddressArgument(const Napi::CallbackInfo& info, size_t index, const char* name);

// A Uint16Array of 128 elements is 256 bytes too, but not a table anyone meant to pass.
bool IsUint8Array(const Napi::CallbackInfo& info, size_t index);
// The 256-byte kind table argument; TypeError/RangeError otherwise.
const uint8_t* KindTableArgument(const Napi::CallbackInfo& info, size_t index);

}  // namespace toa

#endif  // NODE_TOA_JS_VALUES_H
