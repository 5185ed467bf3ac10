// The TOA parser: plain bytes in, a struct out. No N-API, no syscalls, no allocation, so it can be
// fuzzed and sanitized on its own. Every read is bounds-checked; malformed input means "no TOA".
//
// The parser lists every TOA-shaped option of a packet, in order; which one (if any) is believed
// is policy, decided in TypeScript (lib/core/select.ts) per resolver: the first one decides, and
// two or more are ambiguous (docs/formats.md, "Which option decides").
#ifndef NODE_TOA_PARSE_H
#define NODE_TOA_PARSE_H

#include <cstddef>
#include <cstdint>

namespace toa {

// Layout bits: which shapes a TCP option kind may take to count as a TOA (docs/formats.md).
// The kind table passed to the parser holds one byte of these bits per option kind (256 bytes).
enum Layout : uint8_t {
  kLayoutPortIPv4 = 1,  // len 8:  port u16, IPv4      (200, 254, 253 in UCloud's mode)
  kLayoutPortIPv6 = 2,  // len 20: port u16, IPv6      (254 DPVS, 253 LVS/Tencent NAT64)
  kLayoutAliCdn = 4,    // len 7/19: version 1, IPv4/IPv6, no port (Alibaba CDN, kind 28)
  kLayoutVtoa = 8,      // len 20: cport, cip, vid, vip, vport, pad (Alibaba SLB, kind 252)
  kLayoutAliDdos = 16,  // len 40: port u16, IPv6, 20 bytes of node data (Alibaba Anti-DDoS, 249)
};

constexpr size_t kKindTableSize = 256;

struct Address {
  uint8_t family = 0;  // 4, 6, or 0 when absent
  uint8_t bytes[16] = {};
  uint16_t port = 0;
};

// Why a TOA-shaped option holds no client. Such an option still counts: it decides that the
// packet has no TOA, so that an option after it (perhaps the client's own) never wins.
enum OptionStatus : uint8_t {
  kOptionUsable = 0,
  kOptionTfoCookie = 1,   // kind 253/254 with TCP Fast Open's ExID F9 89, in a SYN
  kOptionUnspecified = 2, // 0.0.0.0 or ::
  kOptionBadVersion = 3,  // Alibaba CDN layout whose version byte is not 1
};

// One option of a configured kind whose length fits one of that kind's layouts.
struct ToaOption {
  uint8_t kind = 0;
  uint8_t length = 0;
  uint8_t layout = 0;  // the Layout bit it was decoded with
  uint8_t status = kOptionUsable;
  Address client;
  // Alibaba VTOA only: the VPC id and the virtual address the client dialled.
  uint32_t vid = 0;
  Address vip;
};

// 40 option bytes hold at most five options of the shortest TOA layout (7 bytes): nothing is
// ever cut off.
constexpr size_t kMaxToaOptions = 5;

struct ToaOptionList {
  uint8_t count = 0;
  ToaOption options[kMaxToaOptions];
};

struct Packet {
  bool ok = false;      // an IP packet with a complete TCP header
  Address src;          // L3 source address and TCP source port: the true peer
  Address dst;
  uint8_t tcp_flags = 0;
  uint32_t seq = 0;     // the TCP sequence number
  uint32_t payload_length = 0;
  ToaOptionList toa;    // the TOA-shaped options, in the order they appear
};

// The sequence number of the first byte after a SYN: what the handshake ACK and the first data
// packet carry (past the data a TCP Fast Open SYN carried).
inline uint32_t SeqAfterSyn(uint32_t seq, uint32_t payload_length) { return seq + 1 + payload_length; }
inline uint32_t SeqAfterSyn(const Packet& syn) { return SeqAfterSyn(syn.seq, syn.payload_length); }

constexpr uint8_t kTcpFin = 0x01;
constexpr uint8_t kTcpSyn = 0x02;
constexpr uint8_t kTcpRst = 0x04;
constexpr uint8_t kTcpAck = 0x10;

// Lists the options in `options` that the kind table accepts as TOA-shaped. `syn`: the packet is a
// SYN or SYN-ACK, where F9 89 under 253/254 is a TCP Fast Open cookie (it rides only those), not a
// port. Stops at EOL and at any option whose length is < 2 or runs past the end.
void FindToaOptions(const uint8_t* options, size_t length, const uint8_t* kind_table, bool syn,
                    ToaOptionList* out);

// Parses an IPv4 or IPv6 packet (starting at the IP header, as TCP_SAVED_SYN and an AF_PACKET
// cooked socket deliver it) carrying TCP, and the TOA-shaped options among its options.
Packet ParsePacket(const uint8_t* data, size_t length, const uint8_t* kind_table);

// Normalises ::ffff:a.b.c.d to IPv4 (what the packet parser does for packets).
Address Unmapped(const Address& a);

// Whether two ends are the same address and port (of their family's length).
bool SameAddress(const Address& a, const Address& b);

// The default table: the 200, 249, 253 and 254 rows of docs/formats.md.
void DefaultKindTable(uint8_t* table);

}  // namespace toa

#endif  // NODE_TOA_PARSE_H
