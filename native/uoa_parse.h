// DPVS's UDP Option of Address (iqiyi/dpvs include/uoa.h, kmod/uoa/uoa.md): the client of a UDP
// flow in an IPv4 option (type 0x1F, length 8: port and IPv4; length 20: port and IPv6) that DPVS
// puts on a flow's first datagrams, or in an empty-payload datagram of its own. Also recognised, to
// be counted: the "private protocol" mode (IP protocol 248: a 4-byte header, then the options,
// then UDP), which no UDP socket receives without DPVS's uoa.ko. Plain bytes in (an IP packet,
// network header first), a struct out; no N-API, no allocation, every read bounds-checked, fuzzed
// alone (fuzz/uoa_parse_fuzz.cc).
#ifndef NODE_TOA_UOA_PARSE_H
#define NODE_TOA_UOA_PARSE_H

#include <cstddef>
#include <cstdint>

namespace toa {

constexpr uint8_t kUoaOptionType = 0x1F;
constexpr uint8_t kUoaLengthIpv4 = 8;
constexpr uint8_t kUoaLengthIpv6 = 20;
constexpr uint8_t kIpProtoUdp = 17;
constexpr uint8_t kIpProtoUoa = 248;  // DPVS's IPPROTO_OPT

enum UoaPacketStatus : uint8_t {
  kUoaNotUdp = 0,      // not a whole IPv4/IPv6 UDP (or protocol 248) packet: nothing read
  kUoaNone = 1,        // a UDP packet without a usable UOA option
  kUoaFound = 2,       // a UDP packet in IP-option mode with a UOA: `client` set
  kUoaPrivate = 3,     // a protocol-248 packet (private-protocol mode): `client` set when its option was usable
  kUoaMalformed = 4,   // a UOA-typed option of another length or an unspecified address, or a broken option list
};

struct UoaAddress {
  uint8_t bytes[16] = {};  // IPv4 in the first 4
  bool ipv6 = false;
  uint16_t port = 0;
};

struct UoaPacket {
  UoaPacketStatus status = kUoaNotUdp;
  bool has_client = false;
  UoaAddress source;       // the IP source and UDP source port: the proxy's end of the flow
  UoaAddress destination;  // the IP destination and UDP destination port
  UoaAddress client;       // what the option said
  uint16_t payload_length = 0;  // UDP payload bytes (0 for DPVS's empty-payload form)
};

// Reads the IP packet data[0, len) (network header first, as an AF_PACKET SOCK_DGRAM socket gives
// it). A packet whose lengths disagree with `len` (a snap shorter than the packet is fine: only
// the headers must be there) is kUoaNotUdp.
void ParseUoaPacket(const uint8_t* data, size_t len, UoaPacket* out);

// Walks IPv4 options data[0, len) for the first UOA option. Returns kUoaFound (client set),
// kUoaNone or kUoaMalformed.
UoaPacketStatus FindUoaOption(const uint8_t* data, size_t len, UoaAddress* client);

}  // namespace toa

#endif  // NODE_TOA_UOA_PARSE_H
