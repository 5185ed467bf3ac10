// libFuzzer target for the ACK tap's table alone (native/tap_table.cc; built by scripts/fuzz.sh
// through CMakeLists.txt TOA_FUZZ=ON). Packets arrive in any order, with a clock that moves on,
// interleaved with lookups of their tuples. Besides ASan and UBSan, it runs a model of what the
// table promises (docs/ack-tap.md, "The table") beside it, written from that text with a map in
// place of the ring, and aborts on the first difference:
//   - a SYN (re)starts its tuple's entry and fixes the sequence number the next packet must carry:
//     the SYN's + 1 + the SYN's own data;
//   - a later packet with a TOA-shaped or uncommon option counts as unmatched (no entry), badSeq
//     (another sequence number) or, TOA-shaped, toaFound; the entry keeps the first TOA-shaped
//     one, else the first uncommon one;
//   - at a SYN, entries older than maxAge go (expired), then the one `capacity` SYNs back, if it is
//     still there (evictions); a lookup consumes its entry, and misses one older than maxAge;
//   - a hit is the kept options read with the lookup's kinds, the packet's source as peer, and
//     whether that packet had data;
// and after every step: size() equals the model's entries and stays <= capacity(), every counter
// equals the model's, hits <= lookups.
//
// Input (scripts/fuzz-table-seeds.js writes seeds in this framing):
//   byte 0   capacity (0: the table makes it 1)
//   byte 1   maxAge in ms
//   byte 2   low 2 bits: the kind table packets are offered with (KindTables below); the high 6
//            all set: the hash seeded from std::random_device as the tap's is, else a fixed seed
//            (the random one is slow to get, so only a few inputs pay for it)
//   then operations until the input ends, each an op byte: low 2 bits the action, the high 6 bits
//   milliseconds the clock moves on first.
//     0 offer      a length byte L, then L bytes (fewer at the end): one packet from its IP header
//     1 offer+seq  the same, but the TCP sequence number is first set to what the tuple's entry
//                  asks for, when it has one (random bytes almost never guess it)
//     2 take       a byte: low 6 bits pick one of the packets the table read as TCP (0: the latest,
//                  1: the one before...), whose tuple is looked up; high 2 bits the lookup's kinds
//     3 take       the same, with IPv4 ends passed as ::ffff:a.b.c.d, as a dual-stack socket names them
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <vector>

#include "../native/tap_table.h"

namespace {

using toa::Address;
using toa::TapCounters;
using toa::ToaOptionList;

// Names the broken promise in the crash report.
[[noreturn]] void Fail(const char* condition, int line) {
  std::fprintf(stderr, "tap_table_fuzz.cc:%d: broken: %s\n", line, condition);
  std::abort();
}
#define CHECK(condition) ((condition) ? (void)0 : Fail(#condition, __LINE__))

struct KindTables {
  uint8_t tables[4][toa::kKindTableSize];
  KindTables() {
    toa::DefaultKindTable(tables[0]);
    // The opt-in kinds on top: Alibaba CDN (28) and SLB VTOA (252).
    toa::DefaultKindTable(tables[1]);
    tables[1][28] = toa::kLayoutAliCdn;
    tables[1][252] = toa::kLayoutVtoa;
    // Every kind, every layout: any option of a TOA length is TOA-shaped.
    std::memset(tables[2], toa::kLayoutPortIPv4 | toa::kLayoutPortIPv6 | toa::kLayoutAliCdn | toa::kLayoutVtoa | toa::kLayoutAliDdos,
                toa::kKindTableSize);
    // None: nothing is a TOA, only uncommon options are kept.
    std::memset(tables[3], 0, toa::kKindTableSize);
  }
};

// The table's key (TupleKey): the source's family, both addresses in 16 bytes, the ports.
using Key = std::array<uint8_t, 1 + 16 + 16 + 4>;

Key KeyOf(const Address& src, const Address& dst) {
  Key k{};
  k[0] = src.family;
  std::memcpy(&k[1], src.bytes, 16);
  std::memcpy(&k[17], dst.bytes, 16);
  k[33] = static_cast<uint8_t>(src.port >> 8);
  k[34] = static_cast<uint8_t>(src.port);
  k[35] = static_cast<uint8_t>(dst.port >> 8);
  k[36] = static_cast<uint8_t>(dst.port);
  return k;
}

// What the TCP header says, read here rather than by the table's code: after the IPv4 header, or
// 40 bytes in for IPv6 (the tap reads IPv6 only without extension headers), with the payload the
// IP header declares (a capture may be cut short).
struct Tcp {
  uint32_t seq = 0;
  size_t seq_offset = 0;
  std::vector<uint8_t> options;
  uint32_t payload = 0;
};

bool ReadTcp(const uint8_t* data, size_t length, Tcp* t) {
  if (length < 40) return false;
  const bool v4 = (data[0] >> 4) == 4;
  if (!v4 && data[6] != 6) return false;
  const size_t tcp = v4 ? static_cast<size_t>(data[0] & 0x0f) * 4 : 40;
  if (tcp + 20 > length) return false;
  const uint8_t* h = data + tcp;
  const size_t header = static_cast<size_t>(h[12] >> 4) * 4;
  if (header < 20 || tcp + header > length) return false;
  const size_t declared = v4 ? ((static_cast<size_t>(data[2]) << 8) | data[3])
                             : ((static_cast<size_t>(data[4]) << 8) | data[5]) + 40;
  const size_t used = tcp + header;
  t->payload = static_cast<uint32_t>(declared > used ? declared - used : 0);
  t->seq_offset = tcp + 4;
  t->seq = (static_cast<uint32_t>(h[4]) << 24) | (static_cast<uint32_t>(h[5]) << 16) |
           (static_cast<uint32_t>(h[6]) << 8) | h[7];
  t->options.assign(h + 20, h + header);
  return true;
}

// An option no TCP stack sends on its own (anything but EOL, NOP, MSS, window scale, SACK and
// timestamps), before the walk ends at EOL or at a length that does not fit.
bool Uncommon(const std::vector<uint8_t>& o) {
  for (size_t i = 0; i < o.size();) {
    if (o[i] == 0) return false;
    if (o[i] == 1) {
      i++;
      continue;
    }
    if (i + 1 >= o.size() || o[i + 1] < 2 || o[i + 1] > o.size() - i) return false;
    if (o[i] != 2 && o[i] != 3 && o[i] != 4 && o[i] != 5 && o[i] != 8) return true;
    i += o[i + 1];
  }
  return false;
}

bool SameAddress(const Address& a, const Address& b) {
  return a.family == b.family && a.port == b.port &&
         std::memcmp(a.bytes, b.bytes, a.family == 4 ? 4 : 16) == 0;
}

bool SameOptions(const ToaOptionList& a, const ToaOptionList& b) {
  if (a.count != b.count) return false;
  for (size_t i = 0; i < a.count; i++) {
    const toa::ToaOption& x = a.options[i];
    const toa::ToaOption& y = b.options[i];
    if (x.kind != y.kind || x.length != y.length || x.layout != y.layout || x.status != y.status ||
        !SameAddress(x.client, y.client) || x.vid != y.vid || !SameAddress(x.vip, y.vip)) {
      return false;
    }
  }
  return true;
}

Address Mapped(const Address& a) {
  if (a.family != 4) return a;
  Address m;
  m.family = 6;
  m.bytes[10] = 0xff;
  m.bytes[11] = 0xff;
  std::memcpy(m.bytes + 12, a.bytes, 4);
  m.port = a.port;
  return m;
}

// The model's entry of a tuple.
struct Entry {
  uint32_t next_seq = 0;
  uint64_t syn_time = 0;
  uint64_t syn_number = 0;  // this entry's SYN was the n-th to make an entry
  bool kept = false;
  bool kept_shaped = false;  // TOA-shaped under the kind table it was offered with
  bool kept_data = false;
  std::vector<uint8_t> kept_options;
};

class Run {
 public:
  Run(size_t capacity_byte, uint64_t max_age_ms, const uint8_t* offer_table, bool random_seed)
      : table_(random_seed ? toa::TupleTable(capacity_byte, max_age_ms)
                           : toa::TupleTable(capacity_byte, max_age_ms, 0x9E3779B97F4A7C15ULL)),
        capacity_(capacity_byte == 0 ? 1 : capacity_byte),
        max_age_ms_(max_age_ms),
        offer_table_(offer_table) {
    CHECK(table_.capacity() == capacity_);
  }

  void Advance(uint64_t ms) { now_ += ms; }

  void Offer(const uint8_t* bytes, size_t length, bool in_sequence) {
    // A copy of exactly this size: a read past the packet is an ASan report.
    uint8_t* data = static_cast<uint8_t*>(std::malloc(length ? length : 1));
    std::memcpy(data, bytes, length);
    const toa::Packet p = toa::ParsePacket(data, length, offer_table_);
    Tcp t;
    // A packet whose ends differ in family (::ffff:a.b.c.d to plain IPv6) is no connection's.
    const bool tcp = p.ok && p.src.family == p.dst.family && ReadTcp(data, length, &t);
    if (in_sequence && tcp && (p.tcp_flags & toa::kTcpSyn) == 0) {
      auto found = model_.find(KeyOf(p.src, p.dst));
      if (found != model_.end()) {
        t.seq = found->second.next_seq;
        for (int b = 0; b < 4; b++) data[t.seq_offset + b] = static_cast<uint8_t>(t.seq >> (24 - 8 * b));
      }
    }
    const bool ok = table_.Offer(data, length, offer_table_, now_);
    std::free(data);
    CHECK(ok == tcp);
    if (ok) {
      expected_.packets++;
      tuples_.push_back({p.src, p.dst});
      Learn(p, t);
    } else {
      expected_.malformed++;
    }
    CheckCounters();
  }

  void Take(uint8_t choice, bool mapped, const uint8_t* kind_table) {
    if (tuples_.empty()) return;
    // The parser already gave IPv4-mapped ends as IPv4: these are what the table must key on.
    const auto& tuple = tuples_[tuples_.size() - 1 - (choice & 0x3f) % tuples_.size()];
    const Address& src = tuple.first;
    const Address& dst = tuple.second;

    bool predicted = false;
    ToaOptionList expected_options;
    bool expected_data = false;
    auto found = src.family == dst.family ? model_.find(KeyOf(src, dst)) : model_.end();
    if (found != model_.end()) {
      const Entry& e = found->second;
      if (now_ - e.syn_time > max_age_ms_) {
        expected_.expired++;
      } else if (e.kept) {
        // Outside a SYN, as the table reads them: F9 89 is a port, never a TFO cookie.
        toa::FindToaOptions(e.kept_options.data(), e.kept_options.size(), kind_table, false, &expected_options);
        predicted = expected_options.count > 0;
        expected_data = e.kept_data;
      }
      model_.erase(found);
    }

    TapCounters& counters = table_.counters();
    counters.lookups++;  // as Tap::Lookup counts them
    expected_.lookups++;
    toa::TapHit hit;
    const bool got = table_.Take(mapped ? Mapped(src) : src, mapped ? Mapped(dst) : dst, kind_table, now_, &hit);
    if (got) {
      counters.hits++;
      expected_.hits++;
    }
    CHECK(got == predicted);
    if (got) {
      CHECK(SameAddress(hit.peer, src));
      CHECK(hit.data == expected_data);
      CHECK(SameOptions(hit.options, expected_options));
      CHECK(hit.options.count <= toa::kMaxToaOptions);
      for (size_t i = 0; i < hit.options.count; i++) {
        CHECK((kind_table[hit.options.options[i].kind] & hit.options.options[i].layout) != 0);
      }
    }
    CheckCounters();
  }

 private:
  void Learn(const toa::Packet& p, const Tcp& t) {
    const Key key = KeyOf(p.src, p.dst);
    if ((p.tcp_flags & toa::kTcpSyn) != 0) {
      expected_.syns++;
      if ((p.tcp_flags & (toa::kTcpAck | toa::kTcpRst)) != 0) return;
      model_.erase(key);  // a new connection on this tuple
      const uint64_t number = ++syn_count_;
      for (auto it = model_.begin(); it != model_.end();) {
        if (now_ - it->second.syn_time > max_age_ms_) {
          expected_.expired++;
          it = model_.erase(it);
        } else {
          ++it;
        }
      }
      for (auto it = model_.begin(); it != model_.end(); ++it) {
        if (it->second.syn_number + capacity_ == number) {
          expected_.evictions++;
          model_.erase(it);
          break;
        }
      }
      Entry& e = model_[key];
      e.next_seq = t.seq + 1 + t.payload;
      e.syn_time = now_;
      e.syn_number = number;
      expected_.inserted++;
      return;
    }
    if ((p.tcp_flags & toa::kTcpRst) != 0) return;
    const bool shaped = p.toa.count > 0;
    if (!shaped && !Uncommon(t.options)) return;
    auto found = model_.find(key);
    if (found == model_.end()) {
      expected_.unmatched++;
      return;
    }
    Entry& e = found->second;
    if (t.seq != e.next_seq) {
      expected_.bad_seq++;
      return;
    }
    if (shaped) expected_.toa_found++;
    if (e.kept_shaped || (e.kept && !shaped)) return;
    e.kept = true;
    e.kept_shaped = shaped;
    e.kept_data = t.payload > 0;
    e.kept_options = t.options;
  }

  void CheckCounters() {
    const TapCounters& c = table_.counters();
#define TAP_TABLE_FUZZ_SAME(field, name) CHECK(c.field == expected_.field);
#define TAP_TABLE_FUZZ_NONE(method, name)
    TOA_TAP_STATS(TAP_TABLE_FUZZ_SAME, TAP_TABLE_FUZZ_NONE)
#undef TAP_TABLE_FUZZ_SAME
#undef TAP_TABLE_FUZZ_NONE
    CHECK(c.hits <= c.lookups);
    CHECK(table_.size() == model_.size());
    CHECK(table_.size() <= table_.capacity());
  }

  toa::TupleTable table_;
  const size_t capacity_;
  const uint64_t max_age_ms_;
  const uint8_t* offer_table_;
  uint64_t now_ = 1000000;  // well past 0, as CLOCK_MONOTONIC is
  uint64_t syn_count_ = 0;
  std::map<Key, Entry> model_;
  TapCounters expected_;
  std::vector<std::pair<Address, Address>> tuples_;  // of the packets the table read as TCP
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const KindTables kinds;
  if (size < 3) return 0;
  Run run(data[0], data[1], kinds.tables[data[2] & 3], (data[2] & 0xfc) == 0xfc);
  size_t i = 3;
  while (i < size) {
    const uint8_t op = data[i++];
    run.Advance(op >> 2);
    if (i >= size) break;
    if ((op & 3) < 2) {
      size_t length = data[i++];
      if (length > size - i) length = size - i;
      run.Offer(data + i, length, (op & 3) == 1);
      i += length;
    } else {
      const uint8_t choice = data[i++];
      run.Take(choice, (op & 3) == 3, kinds.tables[choice >> 6]);
    }
  }
  return 0;
}
