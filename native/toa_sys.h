// The syscalls node-toa makes on socket file descriptors. No N-API here either: the glue in
// addon.cc turns these results into JavaScript values. Every function returns 0 or an errno.
#ifndef NODE_TOA_SYS_H
#define NODE_TOA_SYS_H

#include <cstddef>
#include <cstdint>

#include "toa_parse.h"

namespace toa {

// Whether this build can read saved SYNs at all (Linux only).
bool SavedSynSupported();

int SetSaveSyn(int fd, bool on);
int GetSaveSyn(int fd, bool* on);

// Reads the saved SYN into `buf` (IP header + TCP header). The kernel frees it on the first
// read, so a second call reports *length == 0. Too small a buffer gives ENOBUFS.
int ReadSavedSyn(int fd, uint8_t* buf, size_t capacity, size_t* length);

int PeerName(int fd, Address* out);
int SockName(int fd, Address* out);

// A TCP socket in the listening state? (cluster's primary finds its listeners this way)
int IsTcpListener(int fd, bool* listening);

// A non-blocking listening socket with TCP_SAVE_SYN set before listen(2), so no SYN is missed.
struct ListenOptions {
  Address address;  // family 4 or 6; port in address.port
  int backlog = 511;
  bool reuse_port = false;
  bool ipv6_only = false;
};
int CreateListener(const ListenOptions& options, int* fd_out);

}  // namespace toa

#endif  // NODE_TOA_SYS_H
