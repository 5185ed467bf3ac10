// The server's sock_ops program (native/bpf/conn_sockops.bpf.c): loaded once per process with
// the bpf() system call, attached to the process's cgroup through a link while the process
// watches a listening port (the kernel detaches it when the last process holding the link exits),
// told which ports to watch. One program per cgroup: a process whose cgroup already has the same
// program attached by another (a cluster's workers) takes up that one and its maps instead, and
// the processes count their watchers and trusted ranges into them. A connection's packets are
// then read from the slot table the process maps, or by descriptor: one bpf(BPF_MAP_LOOKUP_ELEM).
// No N-API.
#ifndef NODE_TOA_SOCKOPS_H
#define NODE_TOA_SOCKOPS_H

#include <cstddef>
#include <cstdint>
#include <string>

#include "sockops_conn.h"
#include "tap_filter.h"

namespace toa {

// Loads the program, once per process (a failure is remembered, not retried), and attaches it to
// the process's cgroup and detaches it again: whether it can be attached is part of the answer.
// `hold`: a port is about to be watched after its server listens (enable() before listen()), so
// the program stays attached from now on and sees that listen(); the next SockopsWatch takes the
// hold up. Returns 0 or an errno, and then names the step that failed in *failed_call; *log
// receives the verifier's words when the kernel refused the program.
int SockopsLoad(const char** failed_call, std::string* log, bool hold);
// Starts watching `port` (loading the program at the first call, attaching it, or taking up the
// cgroup's, while a port is watched: call it before the port's listen(), so the program flags the
// listener); errors as SockopsLoad's. Of the connections to that port, the program keeps the
// packets the saved SYN does not hold (a syncookie's SYN, the ACK, the first data packet) of those
// from the trusted ranges of `trust` (tap_filter.h; its ports are not used), or of all when it
// checks no sources; where other processes watch the port too, also of those their ranges hold
// (each process decides whom it believes).
int SockopsWatch(uint16_t port, const FilterSpec& trust, const char** failed_call, std::string* log);
// Stops watching `port` (one call per SockopsWatch that succeeded); the process lets go of the
// program once it watches no port (the kernel detaches it when no process holds it).
void SockopsUnwatch(uint16_t port);
// The slot that holds the connection with these ends (sockops_conn.h: IPv4 as ::ffff:a.b.c.d,
// ports as remote << 16 | local), copied whole into *out; false when it holds another one or was
// being written. Memory reads only.
bool SockopsRecent(const uint32_t remote[4], const uint32_t local[4], uint32_t ports, toa_sockops_slot* out);
// What the program kept of the connection of `fd`: 0, ENOENT (none: not a watched port, a sender
// no watcher of the port trusts, not in the program's cgroup, or the program has not run yet) or
// another errno.
int SockopsLookup(int fd, toa_sockops_conn* out);
// Returns once the program has run for the connection of `fd`: accept() can return the socket
// while the softirq that completed the handshake, and runs the program, still holds it.
void SockopsAwaitProgram(int fd);
// Whether a watcher of `port` trusts `remote` (IPv4 as ::ffff:a.b.c.d): the program's own
// question, asked of its map (one system call). The program keeps nothing of the others.
bool SockopsTrusted(const uint32_t remote[4], uint16_t port);

}  // namespace toa

#endif  // NODE_TOA_SOCKOPS_H
