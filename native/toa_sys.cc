#include "toa_sys.h"

#include <cerrno>
#include <cstring>

#if defined(__linux__)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

namespace toa {

#if defined(__linux__)

#ifndef TCP_SAVE_SYN
#define TCP_SAVE_SYN 27
#endif
#ifndef TCP_SAVED_SYN
#define TCP_SAVED_SYN 28
#endif

bool SavedSynSupported() { return true; }

int SetSaveSyn(int fd, bool on) {
  const int value = on ? 1 : 0;
  return setsockopt(fd, IPPROTO_TCP, TCP_SAVE_SYN, &value, sizeof value) == 0 ? 0 : errno;
}

int GetSaveSyn(int fd, bool* on) {
  int value = 0;
  socklen_t size = sizeof value;
  if (getsockopt(fd, IPPROTO_TCP, TCP_SAVE_SYN, &value, &size) != 0) return errno;
  *on = value != 0;
  return 0;
}

int ReadSavedSyn(int fd, uint8_t* buf, size_t capacity, size_t* length) {
  socklen_t size = static_cast<socklen_t>(capacity);
  *length = 0;
  if (getsockopt(fd, IPPROTO_TCP, TCP_SAVED_SYN, buf, &size) != 0) {
    // The kernel answers EINVAL with the needed size when the buffer is too small.
    if (errno == EINVAL && size > capacity) return ENOBUFS;
    return errno;
  }
  *length = size;
  return 0;
}

namespace {

int ToAddress(const sockaddr_storage& ss, Address* out) {
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    out->family = 4;
    std::memset(out->bytes, 0, sizeof out->bytes);
    std::memcpy(out->bytes, &in->sin_addr, 4);
    out->port = ntohs(in->sin_port);
    return 0;
  }
  if (ss.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    out->family = 6;
    std::memcpy(out->bytes, &in6->sin6_addr, 16);
    out->port = ntohs(in6->sin6_port);
    return 0;
  }
  return EAFNOSUPPORT;
}

}  // namespace

int PeerName(int fd, Address* out) {
  sockaddr_storage ss{};
  socklen_t size = sizeof ss;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &size) != 0) return errno;
  return ToAddress(ss, out);
}

int SockName(int fd, Address* out) {
  sockaddr_storage ss{};
  socklen_t size = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &size) != 0) return errno;
  return ToAddress(ss, out);
}

int IsTcpListener(int fd, bool* listening) {
  int value = 0;
  socklen_t size = sizeof value;
  *listening = false;
  if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &value, &size) != 0) return errno;
  if (value != IPPROTO_TCP) return 0;
  size = sizeof value;
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &value, &size) != 0) return errno;
  *listening = value != 0;
  return 0;
}

int CreateListener(const ListenOptions& options, int* fd_out) {
  const bool v6 = options.address.family == 6;
  const int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  const int one = 1;
  int err = 0;
  sockaddr_storage ss{};
  socklen_t size;
  if (v6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
    in6->sin6_family = AF_INET6;
    std::memcpy(&in6->sin6_addr, options.address.bytes, 16);
    in6->sin6_port = htons(options.address.port);
    size = sizeof *in6;
  } else {
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    in->sin_family = AF_INET;
    std::memcpy(&in->sin_addr, options.address.bytes, 4);
    in->sin_port = htons(options.address.port);
    size = sizeof *in;
  }
  const int v6only = options.ipv6_only ? 1 : 0;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      (options.reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ||
      (v6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) != 0) ||
      setsockopt(fd, IPPROTO_TCP, TCP_SAVE_SYN, &one, sizeof one) != 0 ||
      bind(fd, reinterpret_cast<sockaddr*>(&ss), size) != 0 || listen(fd, options.backlog) != 0) {
    err = errno;
    close(fd);
    return err;
  }
  *fd_out = fd;
  return 0;
}

#else  // !__linux__: no saved SYN; the TypeScript layer answers from the socket itself.

bool SavedSynSupported() { return false; }
int SetSaveSyn(int, bool) { return ENOTSUP; }
int GetSaveSyn(int, bool*) { return ENOTSUP; }
int ReadSavedSyn(int, uint8_t*, size_t, size_t* length) {
  *length = 0;
  return ENOTSUP;
}
int PeerName(int, Address*) { return ENOTSUP; }
int SockName(int, Address*) { return ENOTSUP; }
int IsTcpListener(int, bool* listening) {
  *listening = false;
  return ENOTSUP;
}
int CreateListener(const ListenOptions&, int*) { return ENOTSUP; }

#endif

}  // namespace toa
