// Reads what the sock_ops program kept of a connection (sockops_conn.h) the way the saved SYN and
// the packet tap are read: the SYN with ParsePacket, the ACK's and the first data packet's options
// with FindToaOptions. Plain bytes in, structs out: no syscalls, no N-API (fuzzed alone).
#ifndef NODE_TOA_SOCKOPS_PARSE_H
#define NODE_TOA_SOCKOPS_PARSE_H

#include "sockops_conn.h"
#include "tap_table.h"
#include "toa_parse.h"

namespace toa {

// The TOA of the handshake ACK (`ack`, a TCP header of `ack_len` bytes) or, when it had none, of
// the first data packet (`data`), into hit->found / data / options. With `syn` (the connection's
// SYN), false when the ACK does not follow it: the headers are another connection's. Without it,
// the data packet must carry the ACK's sequence number.
bool ParseFollowing(const uint8_t* ack, size_t ack_len, const uint8_t* data, size_t data_len, const Packet* syn,
                    const uint8_t* kind_table, TapHit* hit);

// `syn` receives the saved SYN (ok and *saved true); when the kernel saved none (syncookies), the
// program's copy of the SYN if the ACK's sequence number says it is this connection's, else the
// connection's peer and local end with no options (ok, *saved false either way). `hit` receives the TOA of the
// handshake ACK or, when that had none, of the first data packet (hit->data): the packet whose
// sequence number is the one after the SYN, so no later segment answers for it.
void ParseSockopsConn(const toa_sockops_conn& conn, const uint8_t* kind_table, Packet* syn, bool* saved, TapHit* hit);

}  // namespace toa

#endif  // NODE_TOA_SOCKOPS_PARSE_H
