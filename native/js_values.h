// Conversions shared by the two N-API glue units (addon.cc, tap_addon.cc): argument checks and
// the JavaScript shapes of addresses and options, so the SYN path and the tap answer alike.
#ifndef NODE_TOA_JS_VALUES_H
#define NODE_TOA_JS_VALUES_H

#include <napi.h>

#include "toa_parse.h"

namespace toa {

// { family: 'IPv4' | 'IPv6', address, port }
Napi::Object AddressValue(Napi::Env env, const Address& a);
// The client's AddressValue plus { kind, length } (and { vid, vip } for Alibaba VTOA).
Napi::Object ToaValue(Napi::Env env, const Toa& t);

// A Uint16Array of 128 elements is 256 bytes too, but not a table anyone meant to pass.
bool IsUint8Array(const Napi::CallbackInfo& info, size_t index);
// The 256-byte kind table argument; TypeError/RangeError otherwise.
const uint8_t* KindTableArgument(const Napi::CallbackInfo& info, size_t index);

}  // namespace toa

#endif  // NODE_TOA_JS_VALUES_H
