// libFuzzer target for reading what the sock_ops program kept of a connection
// (native/sockops_parse.h over toa_parse.h), built by scripts/fuzz.sh through CMakeLists.txt
// TOA_FUZZ=ON. The input is the record's bytes (struct toa_sockops_conn, zero-filled past the
// input), the kernel's to fill but parsed as untrusted all the same. Besides ASan and UBSan
// findings it checks what lib/ relies on: the SYN always names the peer; a SYN read as saved is
// the kernel's, never the program's copy; the program's copy counts only when the ACK's sequence
// number follows it; an answer from the packets after the SYN holds an option and comes from a
// header that is there.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "../native/sockops_parse.h"

namespace {

void Check(bool condition) {
  if (!condition) std::abort();
}

uint32_t ReadU32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) | (static_cast<uint32_t>(p[2]) << 8) | p[3];
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A heap copy of exactly the record's size, so a read past it is caught.
  auto* conn = static_cast<toa_sockops_conn*>(std::malloc(sizeof(toa_sockops_conn)));
  std::memset(conn, 0, sizeof *conn);
  std::memcpy(conn, data, size < sizeof *conn ? size : sizeof *conn);
  uint8_t table[256];
  toa::DefaultKindTable(table);

  toa::Packet syn;
  bool saved = true;
  toa::TapHit hit;
  toa::ParseSockopsConn(*conn, table, &syn, &saved, &hit);

  Check(syn.ok);
  Check(syn.src.family == 4 || syn.src.family == 6);
  Check(hit.peer.family == syn.src.family || saved);
  if (saved) Check(conn->syn_cookie == 0 && conn->syn_len > 0 && conn->syn_len <= TOA_SOCKOPS_SYN_MAX);
  if (!saved && syn.toa.count > 0) {
    // The program's copy of a syncookie SYN: the ACK came right after it.
    Check(conn->syn_cookie != 0 && conn->ack_len >= 20);
    Check(syn.seq + 1 + syn.payload_length == ReadU32(conn->ack + 4));
  }
  if (hit.found) {
    Check(hit.options.count > 0 && hit.options.count <= toa::kMaxToaOptions);
    if (hit.data) Check(conn->data_len >= 20 && conn->data_len <= TOA_SOCKOPS_TCP_MAX);
    else Check(conn->ack_len >= 20 && conn->ack_len <= TOA_SOCKOPS_TCP_MAX);
  }
  std::free(conn);
  return 0;
}
