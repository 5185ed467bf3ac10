// The byte record a SYN reader (makeSynReader) fills for one connection: what its saved SYN, the
// server's ACK tap and, when asked, getpeername said. The addon exports these offsets (`recordLayout`), and lib/addon/record.ts
// decodes with them, so the layout is written down once, here. Multi-byte numbers big-endian.
// Building JavaScript objects and address strings through N-API cost more than the syscall.
#ifndef NODE_TOA_RECORD_LAYOUT_H
#define NODE_TOA_RECORD_LAYOUT_H

#include <cstddef>
#include <cstdint>

#include "toa_parse.h"

namespace toa {
namespace record {

// An address: family (4, 6), port (2), 16 address bytes.
constexpr size_t kAddressSize = 19;

constexpr size_t kFlags = 0;
constexpr size_t kPeer = 1;                      // the client end: the SYN's IP source and TCP source port
constexpr size_t kName = kPeer + kAddressSize;   // getpeername()
constexpr size_t kCount = kName + kAddressSize;  // the SYN's TOA-shaped options that follow
constexpr size_t kOptions = kCount + 1;

// Within each option.
constexpr size_t kOptionKind = 0;
constexpr size_t kOptionLength = 1;
constexpr size_t kOptionLayout = 2;
constexpr size_t kOptionStatus = 3;
constexpr size_t kOptionClient = 4;
constexpr size_t kOptionVid = kOptionClient + kAddressSize;  // VTOA only, as the vip
constexpr size_t kOptionVip = kOptionVid + 4;
constexpr size_t kOptionSize = kOptionVip + kAddressSize;

// The tap's packet after the SYN (the handshake ACK or the first data packet): same peer.
constexpr size_t kAckCount = kOptions + kMaxToaOptions * kOptionSize;
constexpr size_t kAckOptions = kAckCount + 1;

constexpr size_t kSize = kAckOptions + kMaxToaOptions * kOptionSize;

constexpr uint8_t kFlagSyn = 1;      // a saved SYN was there (and is gone now)
constexpr uint8_t kFlagPeer = 2;     // a SYN parsed (saved, or the tap's): kPeer and kCount.. are filled
constexpr uint8_t kFlagName = 4;     // kName is filled
constexpr uint8_t kFlagAck = 8;      // the tap had the packet after the SYN: kPeer and kAckCount.. are filled
constexpr uint8_t kFlagAckData = 16; // that packet carried data (else: the handshake ACK)

}  // namespace record
}  // namespace toa

#endif  // NODE_TOA_RECORD_LAYOUT_H
