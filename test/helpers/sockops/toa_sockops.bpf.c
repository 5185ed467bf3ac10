// SPDX-License-Identifier: GPL-2.0
// A client-side TOA injector for tests: attached to a cgroup, it makes the kernel of every
// process in that cgroup write a TOA option (kind, len 8, port u16, IPv4 u32, network order)
// into chosen packets of the TCP connections those processes open. It stands in for a full-NAT
// proxy at full speed on loopback. The loader (loader.c) fills `toa_config`; one object serves
// every mode. Modelled on the kernel selftests progs/test_tcp_hdr_options.c.
#include <linux/bpf.h>
#include <linux/tcp.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define WANT_SYN 1u
#define WANT_ACK 2u   // only the pure ACK that completes the handshake
#define WANT_DATA 4u  // only the first packet that carries payload
#define TOA_LEN 8

#define TCPHDR_FIN 0x01
#define TCPHDR_SYN 0x02
#define TCPHDR_RST 0x04
#define TCPHDR_PSH 0x08
#define TCPHDR_ACK 0x10

// Keep in step with loader.c.
struct toa_config {
  __u32 packets;  // WANT_* bits
  __u32 base;     // IPv4, host order; its low byte is replaced by the source port's
  __u8 kind;
  __u8 raw_len;   // 0: derive the option from base and the port; else write raw[] as it is
  __u8 pad[2];
  __u8 raw[TOA_LEN];
};

enum counter {
  C_CONNECTS,      // active opens seen
  C_SYN,           // options written, per packet type
  C_ACK,
  C_DATA,
  C_RESERVE_FAIL,  // bpf_reserve_hdr_opt refused (no room): that packet went out without TOA
  C_STORE_FAIL,
  C_NO_STORAGE,
  C_MAX,
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct toa_config);
} toa_config SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, C_MAX);
  __type(key, __u32);
  __type(value, __u64);
} toa_counters SEC(".maps");

// Per connection: which of the wanted packets are still to be tagged. The tagging decision
// needs this because "the handshake ACK" and "the first data packet" are about history, not
// about the packet alone.
struct conn_state {
  __u32 pending;
};

struct {
  __uint(type, BPF_MAP_TYPE_SK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, struct conn_state);
} toa_conns SEC(".maps");

static __always_inline void count(__u32 which) {
  __u64 *v = bpf_map_lookup_elem(&toa_counters, &which);
  if (v) __sync_fetch_and_add(v, 1);
}

static __always_inline struct toa_config *config(void) {
  __u32 zero = 0;
  return bpf_map_lookup_elem(&toa_config, &zero);
}

static __always_inline struct conn_state *state(struct bpf_sock_ops *skops, int create) {
  struct bpf_sock *sk = skops->sk;
  if (!sk) return 0;
  return bpf_sk_storage_get(&toa_conns, sk, 0, create ? BPF_SK_STORAGE_GET_F_CREATE : 0);
}

// Once nothing is pending the kernel stops calling us for this connection at all.
static __always_inline void stop_callbacks(struct bpf_sock_ops *skops) {
  bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags & ~BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG);
}

// Which WANT_* bit an outgoing packet would satisfy (0: none). SYN retransmissions are SYNs too.
static __always_inline __u32 packet_type(__u32 tcp_flags, __u32 payload) {
  if (tcp_flags & TCPHDR_SYN) return WANT_SYN;
  if (payload > 0) return WANT_DATA;
  // ECN bits may ride on a pure ACK; anything else makes it something other than the handshake's.
  if ((tcp_flags & (TCPHDR_FIN | TCPHDR_RST | TCPHDR_PSH | TCPHDR_ACK)) == TCPHDR_ACK) return WANT_ACK;
  return 0;
}

static __always_inline int on_connect(struct bpf_sock_ops *skops) {
  struct toa_config *cfg = config();
  struct conn_state *st;
  if (!cfg || !cfg->packets) return 1;
  count(C_CONNECTS);
  st = state(skops, 1);
  if (!st) {
    count(C_NO_STORAGE);
    return 1;
  }
  st->pending = cfg->packets & (WANT_SYN | WANT_ACK | WANT_DATA);
  // Set here, before the SYN is built, so the SYN gets the header callbacks as well.
  bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG);
  return 1;
}

// Called before the handshake ACK goes out: no SYN will be (re)sent from now on.
static __always_inline int on_established(struct bpf_sock_ops *skops) {
  struct conn_state *st = state(skops, 0);
  if (!st) return 1;
  st->pending &= ~WANT_SYN;
  if (!st->pending) stop_callbacks(skops);
  return 1;
}

static __always_inline int on_opt_len(struct bpf_sock_ops *skops) {
  struct conn_state *st = state(skops, 0);
  __u32 want;
  if (!st) return 1;
  if (skops->args[0] & BPF_WRITE_HDR_TCP_CURRENT_MSS) {
    // No skb: the kernel is sizing data segments. Reserve while the first data packet is still
    // to be tagged, so that segment does not outgrow the MSS the stack computed.
    want = st->pending & WANT_DATA;
  } else {
    // The TCP header is not built yet, so skb_len is the payload alone.
    want = st->pending & packet_type(skops->skb_tcp_flags, skops->skb_len);
  }
  if (want && bpf_reserve_hdr_opt(skops, TOA_LEN, 0) != 0) count(C_RESERVE_FAIL);
  return 1;
}

// Only called for packets for which on_opt_len reserved room.
static __always_inline int on_write_opt(struct bpf_sock_ops *skops) {
  struct toa_config *cfg = config();
  struct conn_state *st = state(skops, 0);
  struct tcphdr *th = skops->skb_data;
  __u8 opt[TOA_LEN] = {};
  __u32 type, payload, address;
  __u16 port;
  if (!cfg || !st) return 1;
  if ((void *)(th + 1) > skops->skb_data_end) return 1;
  // Here the header is in the skb: skb_len counts it.
  payload = skops->skb_len > (__u32)th->doff * 4 ? skops->skb_len - (__u32)th->doff * 4 : 0;
  type = st->pending & packet_type(skops->skb_tcp_flags, payload);
  // A data segment sized by a CURRENT_MSS reservation, sent after the first one was tagged:
  // its room stays NOPs.
  if (!type) return 1;

  if (cfg->raw_len >= 2 && cfg->raw_len <= TOA_LEN) {
    __builtin_memcpy(opt, cfg->raw, TOA_LEN);
  } else {
    port = (__u16)skops->local_port;  // host order in sock_ops
    address = (cfg->base & 0xffffff00u) | (port & 0xffu);
    opt[0] = cfg->kind;
    opt[1] = TOA_LEN;
    opt[2] = port >> 8;
    opt[3] = port & 0xff;
    opt[4] = address >> 24;
    opt[5] = (address >> 16) & 0xff;
    opt[6] = (address >> 8) & 0xff;
    opt[7] = address & 0xff;
  }
  if (bpf_store_hdr_opt(skops, opt, sizeof opt, 0) != 0) {
    count(C_STORE_FAIL);
    return 1;
  }
  count(type == WANT_SYN ? C_SYN : type == WANT_ACK ? C_ACK : C_DATA);
  // The SYN stays pending for its retransmissions until the connection is established.
  if (type != WANT_SYN) st->pending &= ~type;
  if (!st->pending) stop_callbacks(skops);
  return 1;
}

SEC("sockops")
int toa_sockops(struct bpf_sock_ops *skops) {
  switch (skops->op) {
    // Active opens only: a passive socket never gets the callback flag, so a server in the
    // cgroup adds nothing.
    case BPF_SOCK_OPS_TCP_CONNECT_CB:
      return on_connect(skops);
    case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
      return on_established(skops);
    case BPF_SOCK_OPS_HDR_OPT_LEN_CB:
      return on_opt_len(skops);
    case BPF_SOCK_OPS_WRITE_HDR_OPT_CB:
      return on_write_opt(skops);
  }
  return 1;
}

char _license[] SEC("license") = "GPL";
