// What the server's sock_ops program (native/bpf/conn_sockops.bpf.c) keeps of each accepted
// connection in its socket storage, and what a lookup by descriptor copies out (native/sockops.cc):
// the raw headers, so every byte is parsed in user space by the same fuzzed parsers as the saved
// SYN and the packet tap's frames. Included by the BPF program and by the addon: fixed-size types
// only, no padding.
#ifndef NODE_TOA_SOCKOPS_CONN_H
#define NODE_TOA_SOCKOPS_CONN_H

#include <linux/types.h>

#define TOA_SOCKOPS_SYN_MAX 120  /* an IPv4 header with options (60) and a TCP header (60) */
#define TOA_SOCKOPS_TCP_MAX 60   /* a TCP header with 40 bytes of options */

struct toa_sockops_conn {
  /* bytes of syn[]: the saved SYN, IP header first, or the program's own copy of a SYN answered
     with a syncookie (syn_cookie 1); 0 when there is neither */
  __u8 syn_len;
  __u8 ack_len;   /* bytes of ack[]: the TCP header of the packet that completed the handshake */
  __u8 data_len;  /* bytes of data[]: the TCP header of the next packet with payload; 0 until then */
  __u8 family;    /* 4 or 6 */
  __u8 syn_cookie;    /* syn[] is the program's copy (the kernel saved none): check its sequence */
  __u8 pad[3];
  __u32 remote_port;  /* host order */
  __u32 local_port;   /* host order */
  __u32 remote[4];    /* network order; IPv4 in remote[0] */
  __u32 local[4];
  __u8 syn[TOA_SOCKOPS_SYN_MAX];
  __u8 ack[TOA_SOCKOPS_TCP_MAX];
  __u8 data[TOA_SOCKOPS_TCP_MAX];
};

/* The program watches the listening ports with watchers: an array map of a count per port, shared
   by every process of the cgroup that uses the program (native/sockops.cc counts its own once). */
#define TOA_SOCKOPS_PORTS 65536

/* A SYN answered with a syncookie is saved nowhere by the kernel: the program copies those of the
   trusted senders (toa_trust) at the SYN-ACK, under the connection's ends, until its ACK comes. */
struct toa_sockops_ends {
  __u32 remote[4];  /* IPv4 as ::ffff:a.b.c.d */
  __u32 local[4];
  __u32 ports;      /* remote port << 16 | local port */
};
struct toa_sockops_syn {
  __u8 len;
  __u8 pad[3];
  __u8 syn[TOA_SOCKOPS_SYN_MAX];
};
#define TOA_SOCKOPS_COOKIE_SYNS 8192

/* The connections established last, in a table user space maps read-only (BPF_F_MMAPABLE): the
   reader, which reads the saved SYN anyway (the call that replaces getpeername), finds the ACK and
   the first data packet here by the SYN's ends, with no second system call. A cache: a slot holds
   the last connection whose ends hash to it, and gen (odd while written, bumped twice per write)
   says whether a read saw one whole write. What it does not hold is in the socket storage. */
struct toa_sockops_slot {
  __u32 gen;
  __u32 ports;      /* remote port << 16 | local port */
  __u32 remote[4];  /* IPv4 as ::ffff:a.b.c.d */
  __u32 local[4];
  __u8 ack_len;     /* 0: the sender is not trusted, nothing after the SYN is kept */
  __u8 data_len;
  __u8 pad[2];
  __u32 ack_seq;    /* the handshake ACK's sequence number (network order): whose slot it is */
  __u8 ack[TOA_SOCKOPS_TCP_MAX];
  __u8 data[TOA_SOCKOPS_TCP_MAX];
};
#define TOA_SOCKOPS_SLOTS 16384  /* a power of two */
#define TOA_SOCKOPS_SLOT_BITS 14

/* MurmurHash3's finalizer: every input bit moves every output bit. */
static inline __u32 toa_sockops_mix(__u32 h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

/* The slot of a connection's ends: the same mix in the program and the reader. Mixed word by
   word, so that ends which differ in a pattern (ports two apart, one address of each end fixed)
   do not meet in one slot. */
static inline __u32 toa_sockops_slot_of(const __u32 remote[4], const __u32 local[4], __u32 ports) {
  __u32 h = toa_sockops_mix(ports ^ remote[0] ^ remote[1]);
  h = toa_sockops_mix(h ^ remote[2] ^ remote[3]);
  h = toa_sockops_mix(h ^ local[3]);
  return h >> (32 - TOA_SOCKOPS_SLOT_BITS);
}

/* The trusted senders, per listening port: an LPM trie key of 16 bits of port (network order) and
   an IPv6 address (IPv4 as ::ffff:a.b.c.d). prefixlen counts both. */
struct toa_sockops_trust_key {
  __u32 prefixlen;
  __u8 port[2];
  __u8 address[16];
};
/* A trust entry's value: how many watchers (of every process sharing the program) added it, and
   its key's prefixlen, so that a lookup, which matches the longest prefix, can tell its own key. */
struct toa_sockops_trust_value {
  __u32 holders;
  __u32 prefixlen;
};
#define TOA_SOCKOPS_TRUST_ENTRIES 4096

#endif  /* NODE_TOA_SOCKOPS_CONN_H */
