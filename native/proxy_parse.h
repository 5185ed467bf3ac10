// The PROXY protocol header parser (HAProxy's doc/proxy-protocol.txt, v1 text and v2 binary):
// plain bytes in, a struct out. No N-API, no allocation, no state, so it is fuzzed and sanitized on
// its own (fuzz/proxy_parse_fuzz.cc). Every read is bounds-checked.
//
// It is called on the first bytes of a connection, as many as have arrived, and says whether they
// hold a whole header, a valid beginning of one, something that is no PROXY header at all, or a
// broken one. What to do with each answer (wait, refuse, pass the bytes on) is policy, decided in
// TypeScript.
#ifndef NODE_TOA_PROXY_PARSE_H
#define NODE_TOA_PROXY_PARSE_H

#include <cstddef>
#include <cstdint>

namespace toa {

enum ProxyStatus : uint8_t {
  kProxyOk = 0,          // a whole header: `length` bytes
  kProxyIncomplete = 1,  // a valid beginning; `length` is the total once a v2 fixed part is in
  kProxyNotProxy = 2,    // the first bytes can be neither signature: no PROXY header here
  kProxyMalformed = 3,   // a PROXY header, broken: see `reason`
  kProxyTooLarge = 4,    // the header is, or will be, longer than max_size
};

enum ProxyReason : uint8_t {
  kReasonNone = 0,
  kReasonV1BadProtocol,
  kReasonV1BadSource,
  kReasonV1BadDestination,
  kReasonV1FamilyMismatch,
  kReasonV1BadSourcePort,
  kReasonV1BadDestinationPort,
  kReasonV1NoCrlf,
  kReasonV2BadVersion,
  kReasonV2BadCommand,
  kReasonV2BadFamily,
  kReasonV2ShortAddresses,
  kReasonV2TlvOverrun,
  kReasonV2TooManyTlvs,
  kReasonV2BadCrcLength,
  kReasonV2DuplicateCrc,
  kReasonV2BadCrc,
  kReasonV2SslTooShort,
  kReasonV2SslOverrun,
  kReasonV2TooManySslTlvs,
  kReasonV2DuplicateSsl,
  kReasonCount,
};

// A short static English text for a reason ("" for kReasonNone): what the binding reports.
const char* ProxyReasonText(ProxyReason reason);

enum ProxyCommand : uint8_t { kProxyCommandLocal = 0, kProxyCommandProxy = 1 };
// The v2 values of the family and transport nibbles.
enum ProxyFamily : uint8_t { kProxyFamilyUnspec = 0, kProxyFamilyInet = 1, kProxyFamilyInet6 = 2, kProxyFamilyUnix = 3 };
enum ProxyTransport : uint8_t { kProxyTransportUnspec = 0, kProxyTransportStream = 1, kProxyTransportDgram = 2 };

// A v1 line may not be longer than this, CRLF included (the spec's own bound).
constexpr size_t kProxyV1MaxLength = 107;
constexpr size_t kProxyV2FixedLength = 16;
constexpr size_t kProxyV2MaxLength = kProxyV2FixedLength + 0xffff;
// Bounds on what is listed, so the output is bounded; more is malformed ("too many TLVs").
constexpr size_t kProxyMaxTlvs = 64;
constexpr size_t kProxyMaxSslTlvs = 32;

constexpr uint8_t kPp2TypeCrc32c = 0x03;
constexpr uint8_t kPp2TypeSsl = 0x20;

struct ProxyEndpoint {
  uint8_t bytes[16] = {};  // IPv4 in the first 4
  uint16_t port = 0;
};

// One TLV: `offset` is where its value starts in the parsed buffer, `length` the value's length.
struct ProxyTlv {
  uint8_t type = 0;
  uint32_t offset = 0;
  uint16_t length = 0;
};

struct ProxyHeader {
  ProxyStatus status = kProxyIncomplete;
  ProxyReason reason = kReasonNone;
  // kProxyOk: bytes the header takes. kProxyIncomplete / kProxyTooLarge: the total a v2 header
  // will take once its fixed part is in, else 0.
  uint32_t length = 0;
  uint8_t version = 0;  // 1 or 2 once its whole signature is in, else 0
  ProxyCommand command = kProxyCommandProxy;  // v1 is always PROXY
  ProxyFamily family = kProxyFamilyUnspec;    // v1: TCP4 -> inet, TCP6 -> inet6, UNKNOWN -> unspec
  ProxyTransport transport = kProxyTransportUnspec;  // v1: TCP4/TCP6 -> stream
  // Set only for a PROXY command with an inet or inet6 family (kProxyOk).
  bool has_addresses = false;
  ProxyEndpoint source;
  ProxyEndpoint destination;
  uint8_t tlv_count = 0;  // v2 top-level TLVs in order, the CRC32c TLV included
  ProxyTlv tlvs[kProxyMaxTlvs];
  bool has_ssl = false;  // a PP2_TYPE_SSL TLV was there
  uint8_t ssl_client = 0;
  uint32_t ssl_verify = 0;
  uint8_t ssl_tlv_count = 0;
  ProxyTlv ssl_tlvs[kProxyMaxSslTlvs];
  bool crc_present = false;  // a CRC32c TLV was there and matched (a mismatch is malformed)
};

// Parses the PROXY header at the start of data[0, len). A header longer than max_size (or, for v1,
// than kProxyV1MaxLength whatever max_size says) is never accepted. Only kProxyOk fills the
// addresses and TLV lists; any other status leaves them empty.
//
// The rules where the spec leaves a choice:
// - v1 is strict: single spaces; ports decimal 0..65535 with no leading zero (only "0" itself);
//   IPv4 a dotted quad of 0..255 with no leading zero; IPv6 as inet_pton reads it (no zone);
//   TCP4 takes IPv4 addresses only and TCP6 IPv6 only. UNKNOWN is followed by CRLF or by a space
//   and anything up to the first CRLF.
// - v2 PROXY takes only the seven family/transport bytes the spec defines, and a length that covers
//   that family's address block. v2 LOCAL ignores its family byte and addresses: TLVs are walked
//   (and must fit) when the family byte is a defined one whose block fits in the length; otherwise
//   the whole rest is ignored.
// - A TLV walk must end exactly at the header's end. At most one CRC32c TLV (value length 4, checked
//   over the whole header with its value zeroed) and at most one SSL TLV.
void ParseProxyHeader(const uint8_t* data, size_t len, size_t max_size, ProxyHeader* out);

// CRC32c (Castagnoli), as PP2_TYPE_CRC32C uses it; `skip` bytes at `skip_offset` count as zeros.
uint32_t ProxyCrc32c(const uint8_t* data, size_t len, size_t skip_offset = 0, size_t skip = 0);

}  // namespace toa

#endif  // NODE_TOA_PROXY_PARSE_H
