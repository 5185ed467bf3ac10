#include "proxy_sys.h"

#include <cerrno>

#if defined(_WIN32)
#include <winsock2.h>
#else
#include <sys/socket.h>
#include <sys/types.h>
#endif

namespace toa {

int PeekProxyHeader(int fd, uint8_t* buf, size_t capacity, size_t max_size, ProxyHeader* out, size_t* peeked) {
  *peeked = 0;
  out->status = kProxyIncomplete;
#if defined(_WIN32)
  (void)fd;
  (void)buf;
  (void)capacity;
  (void)max_size;
  return EAGAIN;
#else
  const size_t want = capacity < max_size ? capacity : max_size;
  ssize_t n;
  do {
    n = recv(fd, buf, want, MSG_PEEK | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return errno;
  *peeked = static_cast<size_t>(n);
  if (n == 0) return 0;
  ParseProxyHeader(buf, static_cast<size_t>(n), max_size, out);
  if (out->status != kProxyOk) return 0;
  // The bytes were peeked, so they are queued: this read takes exactly them, or fails as a whole
  // (then the caller treats the socket as broken: part of a header may be gone).
  ssize_t taken;
  do {
    taken = recv(fd, buf, out->length, MSG_DONTWAIT);
  } while (taken < 0 && errno == EINTR);
  if (taken < 0) return errno;
  if (static_cast<size_t>(taken) != out->length) return EIO;
  return 0;
#endif
}

}  // namespace toa
