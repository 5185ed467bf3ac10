#include "sockops_parse.h"

#include <cstring>

namespace toa {

namespace {

uint32_t ReadU32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | p[3];
}

// An IPv4 client of a dual-stack listener is ::ffff:a.b.c.d in the socket, a.b.c.d in its packets:
// named as its packets name it, as the saved SYN and the packet tap do.
Address EndOf(uint8_t family, const __u32 words[4], uint32_t port) {
  Address a;
  a.family = family;
  a.port = static_cast<uint16_t>(port);
  std::memcpy(a.bytes, words, family == 4 ? 4 : 16);
  return Unmapped(a);
}

// The TOA options of a TCP header of `length` bytes; its sequence number in *seq. False when the
// header is cut short.
bool HeaderOptions(const uint8_t* header, size_t length, const uint8_t* kind_table, uint32_t* seq, ToaOptionList* out) {
  if (length < 20 || length > TOA_SOCKOPS_TCP_MAX) return false;
  const size_t size = static_cast<size_t>(header[12] >> 4) * 4;
  if (size < 20 || size > length) return false;
  *seq = ReadU32(header + 4);
  FindToaOptions(header + 20, size - 20, kind_table, false, out);
  return true;
}

}  // namespace

bool ParseFollowing(const uint8_t* ack, size_t ack_len, const uint8_t* data, size_t data_len, const Packet* syn,
                    const uint8_t* kind_table, TapHit* hit) {
  hit->found = false;
  hit->data = false;
  hit->options = ToaOptionList();
  uint32_t ack_seq = 0;
  ToaOptionList ack_options;
  const bool has_ack = HeaderOptions(ack, ack_len, kind_table, &ack_seq, &ack_options);
  const uint32_t next = syn != nullptr ? SeqAfterSyn(*syn) : ack_seq;
  if (syn != nullptr && has_ack && ack_seq != next) return false;
  if (has_ack && ack_options.count > 0) {
    hit->found = true;
    hit->options = ack_options;
    return true;
  }
  uint32_t data_seq = 0;
  ToaOptionList options;
  if ((has_ack || syn != nullptr) && HeaderOptions(data, data_len, kind_table, &data_seq, &options) && data_seq == next &&
      options.count > 0) {
    hit->found = true;
    hit->data = true;
    hit->options = options;
  }
  return true;
}

void ParseSockopsConn(const toa_sockops_conn& conn, const uint8_t* kind_table, Packet* syn, bool* saved, TapHit* hit) {
  *saved = false;
  *hit = TapHit();
  const uint8_t family = conn.family == 6 ? 6 : 4;
  const Address peer = EndOf(family, conn.remote, conn.remote_port);
  const Address local = EndOf(family, conn.local, conn.local_port);
  hit->peer = peer;
  uint32_t ack_seq = 0;
  ToaOptionList unused;
  const bool has_ack = HeaderOptions(conn.ack, conn.ack_len, kind_table, &ack_seq, &unused);

  *syn = Packet();
  bool known = false;
  if (conn.syn_len > 0 && conn.syn_len <= TOA_SOCKOPS_SYN_MAX) {
    const Packet parsed = ParsePacket(conn.syn, conn.syn_len, kind_table);
    if (conn.syn_cookie == 0) {
      *syn = parsed;
      *saved = known = parsed.ok;
    } else if (parsed.ok && has_ack && SeqAfterSyn(parsed) == ack_seq && SameAddress(parsed.src, peer) &&
               SameAddress(parsed.dst, local)) {
      // The program's copy of a SYN answered with a syncookie: this connection's only if its ACK
      // follows it (a reused 4-tuple's older SYN does not).
      *syn = parsed;
      known = true;
    }
  }
  if (!syn->ok) {
    syn->ok = true;
    syn->src = peer;
    syn->dst = local;
  }
  if (!ParseFollowing(conn.ack, conn.ack_len, conn.data, conn.data_len, known ? syn : nullptr, kind_table, hit)) {
    hit->found = false;
  }
}

}  // namespace toa
