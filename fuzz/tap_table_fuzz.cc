// libFuzzer target for the ACK tap's table alone (native/tap_table.cc; built by scripts/fuzz.sh
// through CMakeLists.txt TOA_FUZZ=ON). Packets arrive in any order, with a clock that moves on,
// interleaved with lookups of their tuples (with or without the sequence number a saved SYN would
// give) and with losses of packets. Besides ASan and UBSan, it runs a model of what the table
// promises (native/tap_table.h's class comment, docs/ack-tap.md "The table") beside it, written
// from that text with a map in place of the ring, and aborts on the first difference:
//   - every SYN forgets what its tuple held; after the SYN only packets whose options hold an
//     option of an uncommon kind count (EOL ends the walk, NOP is skipped, an uncommon kind counts
//     even as the last byte, a common one whose length is < 2 or runs past the end ends it);
//     SYN-ACKs and RSTs never do;
//   - a SYN with an uncommon option (re)starts its tuple's entry, holding its options, the loss
//     generation, and the sequence number the packets after it must carry: the SYN's + 1 + the
//     SYN's own data;
//   - a later packet on a tuple with a held SYN and another number is badSeq; else it is kept
//     under its number (counted unmatched when the entry holds no SYN, making the entry when there
//     is none): the first TOA-shaped packet per number stays, an untagged one gives way to a
//     tagged one, at most 3 numbers, a fourth takes the third's place; a TOA-shaped one counts
//     toaFound;
//   - making an entry first drops those older than maxAge (expired), then the one made `capacity`
//     entries back, if it is still there (evictions);
//   - a lookup consumes its entry, and misses one older than maxAge (expired). With a number, only
//     the packet kept under it answers, and a held SYN with another is stale. Without one, a held
//     SYN stands in (its options come back, its number picks the packet) unless a loss came after
//     it (stale); with no held SYN the kept packets answer only if all came after the last loss and
//     all TOA-shaped ones name the same clients (else stale);
//   - a hit is the chosen packet's options read with the lookup's kinds, the query's peer, and
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
//   then operations until the input ends, each an op byte: low 3 bits the action, the high 5 bits
//   milliseconds the clock moves on first.
//     0 offer         a length byte L, then L bytes (fewer at the end): one packet from its IP header
//     1 offer+seq     a sequence byte (below), then as 0: the packet's TCP sequence number is first
//                     set to the one the byte picks on its tuple's entry, when there is one (random
//                     bytes almost never guess it)
//     2 take          a byte: low 6 bits pick one of the packets the table read as TCP (0: the
//                     latest, 1: the one before...), whose tuple is looked up without a sequence
//                     number (no saved SYN); high 2 bits the lookup's kinds
//     3 take          the same, with IPv4 ends passed as ::ffff:a.b.c.d, as a dual-stack socket names them
//     4 take+seq      as 2, then a sequence byte: the lookup passes the number it picks
//     5 take+seq      the same, mapped
//     6 loss          the sockets lost packets (NoteLoss)
//     7 wait          the clock moves on 64 ms per unit of the high 5 bits instead
//   A sequence byte picks on the tuple's entry: low 2 bits 0 the held SYN's next number (else the
//   first kept packet's), 1-3 the number of kept packet 1-3 (else as 0); bit 2 adds 1 (a near
//   miss); bit 3 instead the number of the packet offered on the tuple 1-4 packets back (low 2
//   bits), kept or not. Without an entry (nor a packet offered, with bit 3) the byte itself is the
//   number.
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
using toa::SameAddress;
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

// Whether the options hold one of a kind no TCP stack sends on its own (anything but EOL, NOP,
// MSS, window scale, SACK-permitted, SACK and timestamps): the walk ends at EOL and at a common
// option whose length is < 2 or runs past the end; an uncommon kind counts as soon as it is read,
// even as the last byte (what the filter's walk does, tap_filter.cc).
bool Uncommon(const std::vector<uint8_t>& o) {
  for (size_t i = 0; i < o.size();) {
    const uint8_t kind = o[i];
    if (kind == 0) return false;
    if (kind == 1) {
      i++;
      continue;
    }
    if (kind != 2 && kind != 3 && kind != 4 && kind != 5 && kind != 8) return true;
    if (i + 1 >= o.size() || o[i + 1] < 2 || o[i + 1] > o.size() - i) return false;
    i += o[i + 1];
  }
  return false;
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

// A packet the model's entry keeps.
struct KeptModel {
  uint32_t seq = 0;
  uint32_t generation = 0;  // the loss generation when it came
  bool shaped = false;      // TOA-shaped under the kind table it was offered with
  bool data = false;
  std::vector<uint8_t> options;
};

// The model's entry of a tuple.
struct Entry {
  uint64_t time = 0;
  uint64_t number = 0;  // this entry was the n-th made
  bool has_syn = false;
  uint32_t syn_generation = 0;
  uint32_t next_seq = 0;
  std::vector<uint8_t> syn_options;
  std::vector<KeptModel> kept;
};

constexpr size_t kKeptPerEntry = 3;

// The number a sequence byte picks on an entry, or among the numbers last offered on its tuple
// (the input framing above).
uint32_t PickSeq(const Entry* e, const std::vector<uint32_t>* offered, uint8_t byte) {
  if ((byte & 8) != 0) {
    if (offered == nullptr || offered->empty()) return byte;
    return (*offered)[offered->size() - 1 - (byte & 3) % offered->size()];
  }
  if (e == nullptr) return byte;
  uint32_t seq = byte;
  const size_t which = byte & 3;
  if (which >= 1 && which <= e->kept.size()) {
    seq = e->kept[which - 1].seq;
  } else if (e->has_syn) {
    seq = e->next_seq;
  } else if (!e->kept.empty()) {
    seq = e->kept[0].seq;
  }
  return seq + ((byte & 4) != 0 ? 1 : 0);
}

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

  void Loss() {
    table_.NoteLoss();
    generation_++;
    CheckCounters();
  }

  // `seq_byte` < 0: the packet's own sequence number.
  void Offer(const uint8_t* bytes, size_t length, int seq_byte) {
    // A copy of exactly this size: a read past the packet is an ASan report.
    uint8_t* data = static_cast<uint8_t*>(std::malloc(length ? length : 1));
    std::memcpy(data, bytes, length);
    const toa::Packet p = toa::ParsePacket(data, length, offer_table_);
    Tcp t;
    // A packet whose ends differ in family (::ffff:a.b.c.d to plain IPv6) is no connection's.
    const bool tcp = p.ok && p.src.family == p.dst.family && ReadTcp(data, length, &t);
    if (seq_byte >= 0 && tcp && (p.tcp_flags & toa::kTcpSyn) == 0) {
      const Key key = KeyOf(p.src, p.dst);
      auto found = model_.find(key);
      auto offered = offered_.find(key);
      if (found != model_.end() || offered != offered_.end()) {
        t.seq = PickSeq(found != model_.end() ? &found->second : nullptr,
                        offered != offered_.end() ? &offered->second : nullptr, static_cast<uint8_t>(seq_byte));
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

  // `seq_byte` < 0: a lookup without a sequence number (no saved SYN).
  void Take(uint8_t choice, bool mapped, int seq_byte, const uint8_t* kind_table) {
    if (tuples_.empty()) return;
    // The parser already gave IPv4-mapped ends as IPv4: these are what the table must key on.
    const auto& tuple = tuples_[tuples_.size() - 1 - (choice & 0x3f) % tuples_.size()];
    const Address& src = tuple.first;
    const Address& dst = tuple.second;

    toa::TakeQuery query;
    query.peer = mapped ? Mapped(src) : src;
    query.local = mapped ? Mapped(dst) : dst;
    const Key key = KeyOf(src, dst);
    auto found = model_.find(key);
    if (seq_byte >= 0) {
      auto offered = offered_.find(key);
      query.has_next_seq = true;
      query.next_seq = PickSeq(found != model_.end() ? &found->second : nullptr,
                               offered != offered_.end() ? &offered->second : nullptr, static_cast<uint8_t>(seq_byte));
    }

    Prediction want;
    if (found != model_.end()) {
      const Entry e = found->second;
      model_.erase(found);
      if (now_ - e.time > max_age_ms_) {
        expected_.expired++;
      } else {
        Predict(e, query, kind_table, &want);
      }
    }

    TapCounters& counters = table_.counters();
    counters.lookups++;  // as Tap::Claim counts them
    expected_.lookups++;
    toa::TapHit hit;
    table_.Take(query, kind_table, now_, &hit);
    if (hit.found) {
      counters.hits++;
      expected_.hits++;
    }
    CHECK(hit.found == want.found);
    CHECK(hit.syn_found == want.syn_found);
    if (hit.found || hit.syn_found) CHECK(SameAddress(hit.peer, src));
    if (hit.found) {
      CHECK(hit.data == want.data);
      CHECK(SameOptions(hit.options, want.options));
      CHECK(hit.options.count <= toa::kMaxToaOptions);
      for (size_t i = 0; i < hit.options.count; i++) {
        CHECK((kind_table[hit.options.options[i].kind] & hit.options.options[i].layout) != 0);
      }
    }
    if (hit.syn_found) CHECK(SameOptions(hit.syn_options, want.syn_options));
    CheckCounters();
  }

 private:
  struct Prediction {
    bool found = false;
    bool data = false;
    ToaOptionList options;
    bool syn_found = false;
    ToaOptionList syn_options;
  };

  // What a lookup of a live, young entry answers; counts `stale` where the table refuses it.
  void Predict(const Entry& e, const toa::TakeQuery& query, const uint8_t* kind_table, Prediction* want) {
    bool has_next = query.has_next_seq;
    uint32_t next = query.next_seq;
    if (e.has_syn) {
      if (has_next && e.next_seq != next) {
        expected_.stale++;
        return;
      }
      if (!has_next) {
        if (e.syn_generation != generation_) {
          expected_.stale++;
          return;
        }
        want->syn_found = true;
        toa::FindToaOptions(e.syn_options.data(), e.syn_options.size(), kind_table, true, &want->syn_options);
        has_next = true;
        next = e.next_seq;
      }
    }
    const KeptModel* chosen = nullptr;
    ToaOptionList chosen_toa;
    for (const KeptModel& k : e.kept) {
      if (has_next) {
        if (k.seq == next) chosen = &k;
        continue;
      }
      if (k.generation != generation_) {
        expected_.stale++;
        return;
      }
      ToaOptionList list;
      // Outside a SYN, as the table reads them: F9 89 is a port, never a TFO cookie.
      toa::FindToaOptions(k.options.data(), k.options.size(), kind_table, false, &list);
      if (list.count == 0) continue;
      if (chosen != nullptr) {
        if (!SameOptions(chosen_toa, list)) {
          expected_.stale++;
          return;
        }
        continue;
      }
      chosen = &k;
      chosen_toa = list;
    }
    if (chosen == nullptr) return;
    toa::FindToaOptions(chosen->options.data(), chosen->options.size(), kind_table, false, &want->options);
    want->found = want->options.count > 0;
    want->data = chosen->data;
  }

  Entry& Make(const Key& key) {
    const uint64_t number = ++made_;
    for (auto it = model_.begin(); it != model_.end();) {
      if (now_ - it->second.time > max_age_ms_) {
        expected_.expired++;
        it = model_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto it = model_.begin(); it != model_.end(); ++it) {
      if (it->second.number + capacity_ == number) {
        expected_.evictions++;
        model_.erase(it);
        break;
      }
    }
    expected_.inserted++;
    Entry& e = model_[key];
    e = Entry();
    e.time = now_;
    e.number = number;
    return e;
  }

  void Keep(Entry& e, const Tcp& t, bool shaped) {
    KeptModel* place = nullptr;
    for (KeptModel& k : e.kept) {
      if (k.seq != t.seq) continue;
      if (k.shaped || !shaped) return;
      place = &k;
      break;
    }
    if (place == nullptr) {
      if (e.kept.size() < kKeptPerEntry) e.kept.emplace_back();
      place = &e.kept.back();
    }
    place->seq = t.seq;
    place->generation = generation_;
    place->shaped = shaped;
    place->data = t.payload > 0;
    place->options = t.options;
  }

  void Learn(const toa::Packet& p, const Tcp& t) {
    const Key key = KeyOf(p.src, p.dst);
    std::vector<uint32_t>& offered = offered_[key];
    if (offered.size() == 4) offered.erase(offered.begin());
    offered.push_back((p.tcp_flags & toa::kTcpSyn) != 0 ? t.seq + 1 + t.payload : t.seq);
    const bool syn = (p.tcp_flags & toa::kTcpSyn) != 0;
    if (syn) expected_.syns++;
    if ((p.tcp_flags & toa::kTcpRst) != 0 || (syn && (p.tcp_flags & toa::kTcpAck) != 0)) return;
    const bool uncommon = Uncommon(t.options);
    if (!uncommon && !syn) return;
    if (syn) {
      model_.erase(key);  // a new connection on this tuple: an earlier one's packets are forgotten
      if (!uncommon) return;  // and nothing of a plain SYN is held
      Entry& e = Make(key);
      e.has_syn = true;
      e.syn_generation = generation_;
      e.next_seq = t.seq + 1 + t.payload;
      e.syn_options = t.options;
      return;
    }
    const bool shaped = p.toa.count > 0;
    auto found = model_.find(key);
    if (found == model_.end()) {
      expected_.unmatched++;
      Keep(Make(key), t, shaped);
    } else {
      Entry& e = found->second;
      if (e.has_syn && t.seq != e.next_seq) {
        expected_.bad_seq++;
        return;
      }
      if (!e.has_syn) expected_.unmatched++;
      Keep(e, t, shaped);
    }
    if (shaped) expected_.toa_found++;
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
  uint64_t made_ = 0;       // entries made
  uint32_t generation_ = 0; // losses so far
  std::map<Key, Entry> model_;
  // The last 4 sequence numbers offered per tuple (a SYN's: the next one), for the sequence bytes.
  std::map<Key, std::vector<uint32_t>> offered_;
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
    const uint8_t action = op & 7;
    if (action == 7) {
      run.Advance(static_cast<uint64_t>(op >> 3) * 64);
      continue;
    }
    run.Advance(op >> 3);
    if (action == 6) {
      run.Loss();
      continue;
    }
    if (i >= size) break;
    if (action <= 1) {
      int seq_byte = -1;
      if (action == 1) {
        seq_byte = data[i++];
        if (i >= size) break;
      }
      size_t length = data[i++];
      if (length > size - i) length = size - i;
      run.Offer(data + i, length, seq_byte);
      i += length;
    } else {
      const uint8_t choice = data[i++];
      int seq_byte = -1;
      if (action >= 4) {
        if (i >= size) break;
        seq_byte = data[i++];
      }
      run.Take(choice, (action & 1) != 0, seq_byte, kinds.tables[choice >> 6]);
    }
  }
  return 0;
}
