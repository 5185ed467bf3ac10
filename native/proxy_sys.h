// Reading a PROXY header straight from an accepted socket's receive queue, before Node reads the
// socket: one peek at what has arrived, and, when it holds a whole header, a read of exactly the
// header's bytes, so what follows stays in the kernel for Node's own first read. No N-API here;
// proxy_addon.cc turns the result into the record lib/proxy-protocol/record.ts decodes.
#ifndef NODE_TOA_PROXY_SYS_H
#define NODE_TOA_PROXY_SYS_H

#include <cstddef>
#include <cstdint>

#include "proxy_parse.h"

namespace toa {

// Peeks at most min(capacity, max_size) bytes of `fd` without waiting and parses them into `out`.
// Returns 0 or the recv errno (EAGAIN: nothing yet). *peeked is how many bytes were there (0 and
// no error: the peer closed). Only when out->status is kProxyOk are the header's out->length bytes
// taken off the socket (they stay in `buf`); every other answer leaves the socket as it was.
int PeekProxyHeader(int fd, uint8_t* buf, size_t capacity, size_t max_size, ProxyHeader* out, size_t* peeked);

}  // namespace toa

#endif  // NODE_TOA_PROXY_SYS_H
