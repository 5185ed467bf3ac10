#include "tap_filter.h"

#if defined(__linux__)
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#endif

namespace toa {

#if defined(__linux__)

namespace {

class Assembler {
 public:
  static constexpr int kNext = -1;

  int Label() {
    labels_.push_back(-1);
    return static_cast<int>(labels_.size()) - 1;
  }
  void Bind(int label) { labels_[label] = static_cast<int>(code_.size()); }
  void Op(uint16_t code, uint32_t k) { code_.push_back(BpfInsn{code, 0, 0, k}); }
  void Jump(uint16_t code, uint32_t k, int if_true, int if_false) {
    fixups_.push_back({code_.size(), if_true, if_false});
    code_.push_back(BpfInsn{code, 0, 0, k});
  }
  void Always(int label) { Jump(BPF_JMP | BPF_JA, 0, label, kNext); }

  // Resolves the labels; empty when a conditional jump would be longer than 255 instructions.
  std::vector<BpfInsn> Finish() {
    for (const Fixup& f : fixups_) {
      BpfInsn& insn = code_[f.pc];
      const auto distance = [&](int label) -> long {
        return label == kNext ? 0 : static_cast<long>(labels_[label]) - static_cast<long>(f.pc) - 1;
      };
      if ((insn.code & 0xf0) == BPF_JA) {
        insn.k = static_cast<uint32_t>(distance(f.if_true));
        continue;
      }
      const long jt = distance(f.if_true);
      const long jf = distance(f.if_false);
      if (jt < 0 || jt > 255 || jf < 0 || jf > 255) return {};
      insn.jt = static_cast<uint8_t>(jt);
      insn.jf = static_cast<uint8_t>(jf);
    }
    return code_;
  }

 private:
  struct Fixup {
    size_t pc;
    int if_true;
    int if_false;
  };
  std::vector<BpfInsn> code_;
  std::vector<int> labels_;
  std::vector<Fixup> fixups_;
};

}  // namespace

// The packet starts at its IP header (SOCK_DGRAM). Passes, to one of `ports`, from this host's
// point of view incoming (PACKET_HOST):
//   - SYNs (flags SYN without ACK/RST), so a reused 4-tuple forgets the previous connection;
//   - other packets without SYN or RST whose TCP header is longer than 20 bytes, except a header
//     of exactly 32 bytes that starts NOP NOP TIMESTAMP: that is the timestamp-only case of
//     every Linux packet, and no TOA can sit in it.
// IPv4 later fragments and IPv6 packets with extension headers are not passed, nor any packet of
// another protocol than `family`'s.
std::vector<BpfInsn> BuildFilter(const std::vector<uint16_t>& ports, int family) {
  if (ports.size() > kMaxTapPorts || (family != 4 && family != 6)) return {};
  Assembler a;
  const int drop = a.Label(), accept = a.Label(), v4 = a.Label(), v6 = a.Label();
  const int tcp = a.Label(), port_ok = a.Label(), maybe_ts = a.Label();
  const int next = Assembler::kNext;

  if (ports.empty()) {
    a.Op(BPF_RET | BPF_K, 0);
    return a.Finish();
  }
  a.Op(BPF_LD | BPF_W | BPF_ABS, static_cast<uint32_t>(SKF_AD_OFF + SKF_AD_PKTTYPE));
  a.Jump(BPF_JMP | BPF_JEQ | BPF_K, PACKET_HOST, next, drop);
  // Bound to ETH_P_ALL, the socket sees every protocol; this one reads only its family's.
  a.Op(BPF_LD | BPF_W | BPF_ABS, static_cast<uint32_t>(SKF_AD_OFF + SKF_AD_PROTOCOL));
  a.Jump(BPF_JMP | BPF_JEQ | BPF_K, family == 4 ? ETH_P_IP : ETH_P_IPV6, next, drop);
  a.Op(BPF_LD | BPF_B | BPF_ABS, 0);
  a.Op(BPF_ALU | BPF_RSH | BPF_K, 4);
  a.Jump(BPF_JMP | BPF_JEQ | BPF_K, 4, v4, next);
  a.Jump(BPF_JMP | BPF_JEQ | BPF_K, 6, v6, drop);

  a.Bind(v4);
  a.Op(BPF_LD | BPF_B | BPF_ABS, 9);  // protocol
  a.Jump(BPF_JMP | BPF_JEQ | BPF_K, 6, next, drop);
  a.Op(BPF_LD | BPF_H | BPF_ABS, 6);  // flags and fragment offset
  a.Jump(BPF_JMP | BPF_JSET | BPF_K, 0x1fff, drop, next);
  a.Op(BPF_LDX | BPF_B | BPF_MSH, 0);  // X = IHL * 4
  a.Always(tcp);

  a.Bind(v6);
  a.Op(BPF_LD | BPF_B | BPF_ABS, 6);  // next header
  a.Jump(BPF_JMP | BPF_JEQ | BPF_K, 6, next, drop);
  a.Op(BPF_LDX | BPF_W | BPF_IMM, 40);

  a.Bind(tcp);
  a.Op(BPF_LD | BPF_H | BPF_IND, 2);  // destination port
  for (size_t i = 0; i < ports.size(); i++) {
    a.Jump(BPF_JMP | BPF_JEQ | BPF_K, ports[i], port_ok, i + 1 == ports.size() ? drop : next);
  }

  a.Bind(port_ok);
  a.Op(BPF_LD | BPF_B | BPF_IND, 13);  // flags
  a.Op(BPF_ALU | BPF_AND | BPF_K, 0x16);  // SYN | RST | ACK
  a.Jump(BPF_JMP | BPF_JEQ | BPF_K, 0x02, accept, next);
  a.Jump(BPF_JMP | BPF_JSET | BPF_K, 0x06, drop, next);  // SYN-ACK, RST: nothing to learn

  a.Op(BPF_LD | BPF_B | BPF_IND, 12);  // data offset
  a.Op(BPF_ALU | BPF_RSH | BPF_K, 4);
  a.Jump(BPF_JMP | BPF_JGT | BPF_K, 5, next, drop);
  a.Jump(BPF_JMP | BPF_JEQ | BPF_K, 8, maybe_ts, accept);
  a.Bind(maybe_ts);
  a.Op(BPF_LD | BPF_W | BPF_IND, 20);  // the first option word
  a.Jump(BPF_JMP | BPF_JEQ | BPF_K, 0x0101080a, drop, accept);

  a.Bind(accept);
  a.Op(BPF_RET | BPF_K, kTapSnapLength);
  a.Bind(drop);
  a.Op(BPF_RET | BPF_K, 0);
  return a.Finish();
}

#else  // !__linux__

std::vector<BpfInsn> BuildFilter(const std::vector<uint16_t>&, int) { return {}; }

#endif

}  // namespace toa
