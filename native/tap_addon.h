// What the rest of the glue may know of the tap's JavaScript object (tap_addon.cc).
#ifndef NODE_TOA_TAP_ADDON_H
#define NODE_TOA_TAP_ADDON_H

#include <napi.h>

#include <memory>

#include "tap_sockets.h"

// The slot that holds the native Tap of a JavaScript Tap object while it is open (empty after its
// close()), for a SYN reader bound to it. TypeError when `value` is not a Tap of this addon.
std::unique_ptr<toa::Tap>* TapSlot(Napi::Env env, Napi::Value value);

// Defines Tap, tapSupported, probePacketSocket and testing.offer (called from addon.cc's Init).
void RegisterTap(Napi::Env env, Napi::Object exports, Napi::Object testing);

#endif  // NODE_TOA_TAP_ADDON_H
