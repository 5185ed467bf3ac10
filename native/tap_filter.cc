#include "tap_filter.h"

#if defined(__linux__)
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#endif

#include "tap_table.h"

namespace toa {

#if defined(__linux__)

namespace {

// TCP option bytes at most (a 60-byte header).
constexpr size_t kMaxOptionBytes = 40;

class Assembler {
 public:
  static constexpr int kNext = -1;
  // A label `n` instructions past the next one (a jump over a return).
  static int Skip(int n) { return -2 - n; }

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
    if (code_.size() > BPF_MAXINSNS) return {};
    for (const Fixup& f : fixups_) {
      BpfInsn& insn = code_[f.pc];
      const auto distance = [&](int label) -> long {
        if (label <= -2) return -2 - label;
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

// The packet starts at its IP header (SOCK_DGRAM). Passes, to one of the ports, from this host's
// point of view incoming (PACKET_HOST), from a trusted source when the spec checks sources:
//   - a SYN (flags SYN without ACK/RST);
//   - a packet without SYN or RST whose TCP options hold a kind that is not common
//     (tap_table.h IsCommonOptionKind: the option walk below is that rule, unrolled, as classic
//     BPF has no backward jumps).
// Timestamp-only ACKs and SACKs stay in the kernel; so does every packet of a flood from an
// untrusted source. IPv4 later
// fragments and IPv6 packets with extension headers are not passed, nor any packet of another
// protocol than `family`'s. Reads past the packet's end make the kernel drop it.
std::vector<BpfInsn> BuildFilter(const FilterSpec& spec, int family) {
  if (spec.ports.size() > kMaxTapPorts || (family != 4 && family != 6)) return {};
  Assembler a;
  const int next = Assembler::kNext;
  const uint32_t kPass = kTapSnapLength;
  // "unless A == k (or A & k), stop here": a jump over a return, never a long one.
  const auto require = [&](uint16_t test, uint32_t k) {
    a.Jump(BPF_JMP | test | BPF_K, k, Assembler::Skip(1), next);
    a.Op(BPF_RET | BPF_K, 0);
  };
  if (spec.ports.empty()) {
    a.Op(BPF_RET | BPF_K, 0);
    return a.Finish();
  }
  a.Op(BPF_LD | BPF_W | BPF_ABS, static_cast<uint32_t>(SKF_AD_OFF + SKF_AD_PKTTYPE));
  require(BPF_JEQ, PACKET_HOST);
  // Bound to ETH_P_ALL, the socket sees every protocol; this one reads only its family's.
  a.Op(BPF_LD | BPF_W | BPF_ABS, static_cast<uint32_t>(SKF_AD_OFF + SKF_AD_PROTOCOL));
  require(BPF_JEQ, family == 4 ? ETH_P_IP : ETH_P_IPV6);
  a.Op(BPF_LD | BPF_B | BPF_ABS, 0);
  a.Op(BPF_ALU | BPF_RSH | BPF_K, 4);
  require(BPF_JEQ, static_cast<uint32_t>(family));
  if (family == 4) {
    a.Op(BPF_LD | BPF_B | BPF_ABS, 9);  // protocol
    require(BPF_JEQ, 6);
    a.Op(BPF_LD | BPF_H | BPF_ABS, 6);  // flags and fragment offset
    a.Op(BPF_ALU | BPF_AND | BPF_K, 0x1fff);
    require(BPF_JEQ, 0);
  } else {
    a.Op(BPF_LD | BPF_B | BPF_ABS, 6);  // next header
    require(BPF_JEQ, 6);
  }
  if (spec.check_sources) {
    const int source_ok = a.Label();
    const uint32_t base = family == 4 ? 12 : 8;  // the source address
    for (const SourceRange& r : spec.sources) {
      if (r.family != family) continue;
      const int other = a.Label();
      const int words = (r.prefix + 31) / 32;
      if (words == 0) a.Always(source_ok);
      for (int w = 0; w < words; w++) {
        const int bits = r.prefix - 32 * w < 32 ? r.prefix - 32 * w : 32;
        const uint32_t mask = bits == 32 ? 0xffffffffu : ~(0xffffffffu >> bits);
        const uint32_t value = ((static_cast<uint32_t>(r.bytes[4 * w]) << 24) | (static_cast<uint32_t>(r.bytes[4 * w + 1]) << 16) |
                                (static_cast<uint32_t>(r.bytes[4 * w + 2]) << 8) | r.bytes[4 * w + 3]) &
                               mask;
        a.Op(BPF_LD | BPF_W | BPF_ABS, base + 4 * static_cast<uint32_t>(w));
        if (mask != 0xffffffffu) a.Op(BPF_ALU | BPF_AND | BPF_K, mask);
        a.Jump(BPF_JMP | BPF_JEQ | BPF_K, value, w + 1 == words ? source_ok : next, other);
      }
      a.Bind(other);
    }
    a.Op(BPF_RET | BPF_K, 0);  // no trusted range holds the source
    a.Bind(source_ok);
  }
  if (family == 4) {
    a.Op(BPF_LDX | BPF_B | BPF_MSH, 0);  // X = IHL * 4
  } else {
    a.Op(BPF_LDX | BPF_W | BPF_IMM, 40);
  }

  const int port_ok = a.Label();
  a.Op(BPF_LD | BPF_H | BPF_IND, 2);  // destination port
  for (uint16_t port : spec.ports) a.Jump(BPF_JMP | BPF_JEQ | BPF_K, port, port_ok, next);
  a.Op(BPF_RET | BPF_K, 0);
  a.Bind(port_ok);

  a.Op(BPF_LD | BPF_B | BPF_IND, 13);     // flags
  a.Op(BPF_ALU | BPF_AND | BPF_K, 0x16);  // SYN | RST | ACK
  const int walk = a.Label();
  // Every connection request (from a trusted source, when the spec checks sources) passes,
  // whatever its options: it tells the table that a 4-tuple starts a new connection, so what an
  // earlier one left there is forgotten; that matters where no saved SYN names the connection (a
  // syncookie). This is why a trust list keeps a SYN flood in the kernel.
  a.Jump(BPF_JMP | BPF_JEQ | BPF_K, 0x02, Assembler::Skip(3), next);
  a.Jump(BPF_JMP | BPF_JSET | BPF_K, 0x06, next, walk);  // a SYN-ACK or a reset: nothing to learn
  a.Op(BPF_RET | BPF_K, 0);
  a.Always(walk);
  a.Op(BPF_RET | BPF_K, kPass);
  a.Bind(walk);

  // M[0] = the end of the TCP header; X walks the options from the first.
  a.Op(BPF_LD | BPF_B | BPF_IND, 12);  // data offset
  a.Op(BPF_ALU | BPF_RSH | BPF_K, 4);
  a.Op(BPF_ALU | BPF_LSH | BPF_K, 2);
  a.Op(BPF_ALU | BPF_ADD | BPF_X, 0);
  a.Op(BPF_ST, 0);
  a.Op(BPF_MISC | BPF_TXA, 0);
  a.Op(BPF_ALU | BPF_ADD | BPF_K, 20);
  a.Op(BPF_MISC | BPF_TAX, 0);
  // Each step reads one option and moves past it (at least a byte), so 40 steps cover 40 bytes.
  for (size_t step = 0; step < kMaxOptionBytes; step++) {
    const int pass = a.Label(), stop = a.Label(), nop = a.Label(), following = a.Label();
    a.Op(BPF_LD | BPF_MEM, 0);
    a.Jump(BPF_JMP | BPF_JGT | BPF_X, 0, next, stop);  // the end is past X: options remain
    a.Op(BPF_LD | BPF_B | BPF_IND, 0);                   // kind
    a.Jump(BPF_JMP | BPF_JEQ | BPF_K, 0, stop, next);    // EOL
    a.Jump(BPF_JMP | BPF_JEQ | BPF_K, 1, nop, next);     // NOP
    for (uint32_t kind = 2; kind <= 8; kind++) {
      if (!IsCommonOptionKind(static_cast<uint8_t>(kind))) a.Jump(BPF_JMP | BPF_JEQ | BPF_K, kind, pass, next);
    }
    a.Jump(BPF_JMP | BPF_JGT | BPF_K, 8, pass, next);
    a.Op(BPF_LD | BPF_B | BPF_IND, 1);                   // length
    a.Jump(BPF_JMP | BPF_JGE | BPF_K, 2, next, stop);
    a.Op(BPF_ALU | BPF_ADD | BPF_X, 0);
    a.Op(BPF_MISC | BPF_TAX, 0);
    a.Always(following);
    a.Bind(pass);
    a.Op(BPF_RET | BPF_K, kPass);
    a.Bind(stop);
    a.Op(BPF_RET | BPF_K, 0);
    a.Bind(nop);
    a.Op(BPF_MISC | BPF_TXA, 0);
    a.Op(BPF_ALU | BPF_ADD | BPF_K, 1);
    a.Op(BPF_MISC | BPF_TAX, 0);
    a.Bind(following);
  }
  a.Op(BPF_RET | BPF_K, 0);
  return a.Finish();
}

#else  // !__linux__

std::vector<BpfInsn> BuildFilter(const FilterSpec&, int) { return {}; }

#endif

}  // namespace toa
