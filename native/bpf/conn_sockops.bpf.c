// SPDX-License-Identifier: GPL-2.0
// The server's side of the handshake, seen from inside the kernel: attached to the server's cgroup
// (native/sockops.cc), it keeps, in the socket storage of each connection a trusted proxy made,
// the saved SYN, the TCP header of the ACK that completed the handshake and that of the first
// packet with payload, and the ACK's in a table the reader maps. The reader finds a connection's
// packets in that table by its saved SYN's ends, with no system call beyond the saved-SYN read
// that replaces getpeername (the storage, by descriptor, when the slot went to another
// connection), instead of a packet tap copying every handshake packet to user space and a table
// matching them later. The program only copies bytes: which option is believed, and from whom, is
// decided in user space (native/toa_parse.cc, lib/core/decide.ts).
//
// Built by `npm run build:bpf` (clang -target bpf) into conn_sockops.inc, which is checked in: the
// package carries the instructions, not a compiler.
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "../sockops_conn.h"

#define SOL_TCP 6
// A context field, read where it is named: the verifier refuses a load through a context pointer
// the compiler moved (as it does to share one load between two branches).
#define CTX(field) (*(volatile __typeof__(skops->field) *)&skops->field)

// The maps, in the loader's order (it creates them and patches their descriptors in).
// Map 0: what each accepted connection's packets said.
struct {
  __uint(type, BPF_MAP_TYPE_SK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, struct toa_sockops_conn);
} toa_conns SEC(".maps");

// Map 1: the watched listening ports: how many watchers each has, over the processes sharing the
// program.
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, TOA_SOCKOPS_PORTS);
  __type(key, __u32);
  __type(value, __u32);
} toa_ports SEC(".maps");

// Map 2: SYNs answered with a syncookie, from the trusted senders, until their ACK comes.
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, TOA_SOCKOPS_COOKIE_SYNS);
  __type(key, struct toa_sockops_ends);
  __type(value, struct toa_sockops_syn);
} toa_syns SEC(".maps");

// Map 3: the trusted senders per watched port (the trustProxy of each watcher's resolver).
struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(max_entries, TOA_SOCKOPS_TRUST_ENTRIES);
  __type(key, struct toa_sockops_trust_key);
  __type(value, struct toa_sockops_trust_value);
} toa_trust SEC(".maps");

// Map 4: the connections established last, mapped read-only by the reader (sockops_conn.h).
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(map_flags, BPF_F_MMAPABLE);
  __uint(max_entries, TOA_SOCKOPS_SLOTS);
  __type(key, __u32);
  __type(value, struct toa_sockops_slot);
} toa_recent SEC(".maps");

// Copies the TCP header in [data, end) into out (at most TOA_SOCKOPS_TCP_MAX bytes, 4 at a time:
// a TCP header is a whole number of words); returns the bytes copied.
static __always_inline __u8 copy_header(__u8 *out, void *data, void *end) {
  __u8 n = 0;
#pragma unroll
  for (int i = 0; i < TOA_SOCKOPS_TCP_MAX; i += 4) {
    if (data + i + 4 > end) break;
    *(__u32 *)(out + i) = *(__u32 *)(data + i);
    n = i + 4;
  }
  return n;
}

static __always_inline int watched(__u32 port) {
  __u32 key = port & 0xffff;
  __u32 *watchers = bpf_map_lookup_elem(&toa_ports, &key);
  return watchers && *watchers != 0;
}

// The connection's ends as the cookie map keys them (IPv4 as ::ffff:a.b.c.d). Every field is
// loaded, then chosen: loads in both arms of a branch get merged into one through a moved
// context pointer, which the verifier refuses.
static __always_inline void ends_of(struct bpf_sock_ops *skops, struct toa_sockops_ends *e) {
  const int v4 = CTX(family) == 2;
  const __u32 mapped = bpf_htonl(0xffff);
  const __u32 remote4 = CTX(remote_ip4), local4 = CTX(local_ip4);
  const __u32 r0 = CTX(remote_ip6[0]), r1 = CTX(remote_ip6[1]), r2 = CTX(remote_ip6[2]), r3 = CTX(remote_ip6[3]);
  const __u32 l0 = CTX(local_ip6[0]), l1 = CTX(local_ip6[1]), l2 = CTX(local_ip6[2]), l3 = CTX(local_ip6[3]);
  e->remote[0] = v4 ? 0 : r0;
  e->remote[1] = v4 ? 0 : r1;
  e->remote[2] = v4 ? mapped : r2;
  e->remote[3] = v4 ? remote4 : r3;
  e->local[0] = v4 ? 0 : l0;
  e->local[1] = v4 ? 0 : l1;
  e->local[2] = v4 ? mapped : l2;
  e->local[3] = v4 ? local4 : l3;
  e->ports = (bpf_ntohl(CTX(remote_port)) << 16) | (CTX(local_port) & 0xffff);
}

// Whether the sender of the connection with these ends is a trusted proxy on its port.
static __always_inline int trusted(const struct toa_sockops_ends *e) {
  struct toa_sockops_trust_key k = {};
  k.prefixlen = 16 + 128;
  k.port[0] = (e->ports >> 8) & 0xff;
  k.port[1] = e->ports & 0xff;
  __builtin_memcpy(k.address, e->remote, 16);
  return bpf_map_lookup_elem(&toa_trust, &k) != 0;
}

// At a SYN-ACK that carries a syncookie (the listener is flagged at listen()): a copy of the SYN,
// when its sender is trusted on this port, since the kernel keeps none.
static __always_inline void keep_cookie_syn(struct bpf_sock_ops *skops) {
  struct toa_sockops_ends e = {};
  struct toa_sockops_syn v = {};
  long n;

  ends_of(skops, &e);
  if (!trusted(&e)) return;
  n = bpf_getsockopt(skops, SOL_TCP, TCP_BPF_SYN_IP, v.syn, sizeof v.syn);
  if (n <= 0 || n > (long)sizeof v.syn) return;
  v.len = (__u8)n;
  bpf_map_update_elem(&toa_syns, &e, &v, BPF_ANY);
}

// The SYN of a connection the kernel saved none for, if the program kept it at its SYN-ACK.
static __always_inline void take_cookie_syn(const struct toa_sockops_ends *e, struct toa_sockops_conn *c) {
  struct toa_sockops_syn *v = bpf_map_lookup_elem(&toa_syns, e);
  if (!v) return;
  __builtin_memcpy(c->syn, v->syn, sizeof c->syn);
  c->syn_len = v->len;
  c->syn_cookie = 1;
  bpf_map_delete_elem(&toa_syns, e);
}

// Claims the slot of `e` for a write (its gen made odd), or returns 0: another CPU is writing it,
// and what that one writes is not this connection, which a reader then finds in the storage.
static __always_inline struct toa_sockops_slot *claim_slot(const struct toa_sockops_ends *e) {
  __u32 index = toa_sockops_slot_of(e->remote, e->local, e->ports);
  struct toa_sockops_slot *s = bpf_map_lookup_elem(&toa_recent, &index);
  __u32 gen;
  if (!s) return 0;
  gen = s->gen;
  if (gen & 1) return 0;
  if (__sync_val_compare_and_swap(&s->gen, gen, gen + 1) != gen) return 0;
  return s;
}

static __always_inline void release_slot(struct toa_sockops_slot *s) { __sync_fetch_and_add(&s->gen, 1); }

// The connection's packets after the SYN, for the reader that reads the saved SYN; for an
// untrusted sender (no storage, `c` null) none, which the ACK's sequence number, `seq`, ties to
// this connection, so the reader learns it with no lookup.
static __always_inline void publish(const struct toa_sockops_ends *e, const struct toa_sockops_conn *c, __u32 seq) {
  struct toa_sockops_slot *s = claim_slot(e);
  if (!s) return;
  __builtin_memcpy(s->remote, e->remote, sizeof s->remote);
  __builtin_memcpy(s->local, e->local, sizeof s->local);
  s->ports = e->ports;
  s->ack_seq = seq;
  s->ack_len = 0;
  s->data_len = 0;
  if (c) {
    s->ack_len = c->ack_len;
    s->data_len = c->data_len;
    __builtin_memcpy(s->ack, c->ack, sizeof s->ack);
  }
  release_slot(s);
}

// The first data packet, into the slot if it still holds this connection.
static __always_inline void publish_data(const struct toa_sockops_ends *e, const struct toa_sockops_conn *c) {
  struct toa_sockops_slot *s = claim_slot(e);
  if (!s) return;
  if (s->ports == e->ports && s->remote[0] == e->remote[0] && s->remote[1] == e->remote[1] &&
      s->remote[2] == e->remote[2] && s->remote[3] == e->remote[3] && s->local[0] == e->local[0] &&
      s->local[1] == e->local[1] && s->local[2] == e->local[2] && s->local[3] == e->local[3]) {
    __builtin_memcpy(s->data, c->data, sizeof s->data);
    s->data_len = c->data_len;
  }
  release_slot(s);
}

SEC("sockops")
int toa_conn_sockops(struct bpf_sock_ops *skops) {
  struct bpf_sock *sk;
  struct toa_sockops_conn *c;

  switch (skops->op) {
    case BPF_SOCK_OPS_TCP_LISTEN_CB:
      // Every listener's SYN-ACKs call HDR_OPT_LEN_CB, which says which carry a cookie: a port may
      // be watched only once it listens (port 0), and listen() is the only call on the listener.
      bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG);
      return 1;
    case BPF_SOCK_OPS_HDR_OPT_LEN_CB:
      if ((skops->args[0] & BPF_WRITE_HDR_TCP_SYNACK_COOKIE) && watched(skops->local_port)) keep_cookie_syn(skops);
      return 1;
    case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB: {
      struct toa_sockops_ends e = {};
      void *ack = (void *)(long)skops->skb_data;
      __u32 seq = 0;
      // The listener's SYN-ACK callbacks are not the connection's.
      __u32 flags = skops->bpf_sock_ops_cb_flags & ~BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG;
      sk = skops->sk;
      if (!sk || !watched(skops->local_port)) {
        bpf_sock_ops_cb_flags_set(skops, flags);
        return 1;
      }
      if (ack + 8 <= (void *)(long)skops->skb_data_end) seq = *(__u32 *)(ack + 4);
      ends_of(skops, &e);
      // The packets after the SYN only from a trusted proxy (the tap's trust list, as the packet
      // sockets' filter has it). Anyone else's connection gets no storage, the most of the
      // program's cost (two allocations): its slot says that nothing was kept.
      if (!trusted(&e)) {
        publish(&e, 0, seq);
        bpf_sock_ops_cb_flags_set(skops, flags);
        return 1;
      }
      c = bpf_sk_storage_get(&toa_conns, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
      if (!c) {
        bpf_sock_ops_cb_flags_set(skops, flags);
        return 1;
      }
      c->family = CTX(family) == 10 ? 6 : 4;
      c->remote_port = bpf_ntohl(skops->remote_port);
      c->local_port = skops->local_port;
      c->remote[0] = CTX(remote_ip6[0]);
      c->remote[1] = CTX(remote_ip6[1]);
      c->remote[2] = CTX(remote_ip6[2]);
      c->remote[3] = CTX(remote_ip6[3]);
      c->local[0] = CTX(local_ip6[0]);
      c->local[1] = CTX(local_ip6[1]);
      c->local[2] = CTX(local_ip6[2]);
      c->local[3] = CTX(local_ip6[3]);
      if (c->family == 4) {
        c->remote[0] = CTX(remote_ip4);
        c->local[0] = CTX(local_ip4);
      }
      {
        // The saved SYN (the listener has TCP_SAVE_SYN); none under syncookies.
        long n = bpf_getsockopt(skops, SOL_TCP, TCP_BPF_SYN_IP, c->syn, sizeof c->syn);
        c->syn_len = n > 0 && n <= (long)sizeof c->syn ? (__u8)n : 0;
        c->syn_cookie = 0;
      }
      c->data_len = 0;
      if (c->syn_len == 0) take_cookie_syn(&e, c);
      c->ack_len = copy_header(c->ack, (void *)(long)skops->skb_data, (void *)(long)skops->skb_data_end);
      // The ACK carried no payload: the next packet that does is the first data packet.
      if (skops->skb_len <= c->ack_len) flags |= BPF_SOCK_OPS_PARSE_ALL_HDR_OPT_CB_FLAG;
      publish(&e, c, seq);
      bpf_sock_ops_cb_flags_set(skops, flags);
      return 1;
    }
    case BPF_SOCK_OPS_PARSE_HDR_OPT_CB: {
      void *data = (void *)(long)skops->skb_data;
      void *end = (void *)(long)skops->skb_data_end;
      sk = skops->sk;
      if (!sk || skops->skb_len <= (__u32)(end - data)) return 1;  // no payload yet
      bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags & ~BPF_SOCK_OPS_PARSE_ALL_HDR_OPT_CB_FLAG);
      c = bpf_sk_storage_get(&toa_conns, sk, 0, 0);
      if (!c || c->data_len != 0) return 1;
      c->data_len = copy_header(c->data, data, end);
      {
        struct toa_sockops_ends e = {};
        ends_of(skops, &e);
        publish_data(&e, c);
      }
      return 1;
    }
  }
  return 1;
}

char _license[] SEC("license") = "GPL";
