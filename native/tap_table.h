// The ACK tap's table: 4-tuple -> the TCP options of the packet after the SYN that may hold a TOA.
// Plain bytes in, no syscalls and no N-API (the only thing it asks the system for is the hash
// seed), so it is unit-tested through testing.offer() and fuzzed alone (fuzz/tap_table_fuzz.cc).
// The packet sockets that feed it are in tap_sockets.h.
#ifndef NODE_TOA_TAP_TABLE_H
#define NODE_TOA_TAP_TABLE_H

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "toa_parse.h"

// Every figure of the tap's stats(), once, in the order JavaScript sees them (lib/addon/native.ts
// NativeTapStats): COUNTER(field, "name") is a TapCounters field ("Tap:" ones are counted by the
// sockets, tap_sockets.cc), TABLE(method, "name") what the table says of itself. TapCounters below
// and tap_addon.cc's Stats() both expand it, so a counter cannot be added to one and missed by
// the other.
#define TOA_TAP_STATS(COUNTER, TABLE)                                                                \
  COUNTER(packets, "packets")       /* packets that passed the filter and were read */               \
  COUNTER(syns, "syns")             /* SYNs among them (each starts a fresh entry for its tuple) */  \
  COUNTER(toa_found, "toaFound")    /* accepted packets (right sequence) with a TOA-shaped option */ \
  COUNTER(unmatched, "unmatched")   /* packets with options on a tuple whose SYN was not seen */     \
  COUNTER(bad_seq, "badSeq")        /* packets whose sequence number is not the SYN's + 1 */         \
  COUNTER(inserted, "inserted")     /* entries created (one per SYN) */                              \
  TABLE(size, "tableSize")          /* live entries */                                               \
  TABLE(capacity, "capacity")       /* the bound */                                                  \
  COUNTER(evictions, "evictions")   /* live entries pushed out by capacity (oldest first) */         \
  COUNTER(expired, "expired")       /* live entries dropped for age */                               \
  COUNTER(drops, "drops")           /* Tap: dropped by the kernel, the buffer was full */            \
  COUNTER(lookups, "lookups")       /* Tap: lookups of accepted sockets */                           \
  COUNTER(hits, "hits")             /* Tap: lookups that found TOA-shaped options */                 \
  COUNTER(malformed, "malformed")   /* passed the filter but did not parse as TCP */

namespace toa {

// The connection a packet belongs to, as the server sees it. IPv4-mapped IPv6 addresses are
// stored as IPv4, so a dual-stack socket finds the IPv4 packets of its connection.
struct TupleKey {
  uint8_t family = 0;  // 4 or 6
  uint8_t src[16] = {};
  uint8_t dst[16] = {};
  uint16_t sport = 0;
  uint16_t dport = 0;
  bool operator==(const TupleKey& o) const;
};

struct TupleHash {
  uint64_t seed = 0;  // random per table: forged tuples cannot aim at one bucket
  size_t operator()(const TupleKey& k) const;
};

// The table counts what it sees; the sockets (Tap) add drops, lookups and hits to the same struct,
// so stats() reads one place.
struct TapCounters {
#define TOA_TAP_COUNTER_FIELD(field, name) uint64_t field = 0;
#define TOA_TAP_TABLE_NONE(method, name)
  TOA_TAP_STATS(TOA_TAP_COUNTER_FIELD, TOA_TAP_TABLE_NONE)
#undef TOA_TAP_COUNTER_FIELD
#undef TOA_TAP_TABLE_NONE
};

// What a lookup found: the TOA-shaped options of the packet that carried them, its IP source,
// and whether it was the handshake ACK or a packet with data.
struct TapHit {
  Address peer;
  ToaOptionList options;
  bool data = false;
};

// A SYN makes the entry and fixes the sequence number the next packet must carry (the SYN's + 1:
// the handshake ACK and the first data byte both have it), so a packet forged by someone who did
// not see the SYN is refused, as TCP itself would refuse it. Options are kept raw and parsed at
// lookup with the caller's kind table, so kinds configured after the packet arrived still count.
// Capacity and age bound the table; the oldest entry goes first.
class TupleTable {
 public:
  static constexpr size_t kMaxOptions = 40;

  // The hash seed comes from std::random_device.
  TupleTable(size_t capacity, uint64_t max_age_ms);
  // A seed of the caller's: the fuzzer makes a table per input, and std::random_device's
  // constructor runs cpuid, a trap to the hypervisor in a VM, which cost it a third of its speed.
  TupleTable(size_t capacity, uint64_t max_age_ms, uint64_t hash_seed);

  // Feeds one packet (starting at the IP header). `kind_table` decides whether a packet's options
  // hold a TOA (a later packet with one replaces an earlier entry without one). Returns whether
  // the packet parsed as TCP.
  bool Offer(const uint8_t* data, size_t length, const uint8_t* kind_table, uint64_t now_ms);

  // Finds and consumes the entry of (peer -> local). A hit needs a TOA under `kind_table`.
  bool Take(const Address& peer, const Address& local, const uint8_t* kind_table, uint64_t now_ms,
            TapHit* out);

  size_t size() const { return index_.size(); }
  size_t capacity() const { return capacity_; }
  TapCounters& counters() { return counters_; }
  const TapCounters& counters() const { return counters_; }

 private:
  struct Slot {
    TupleKey key;
    uint64_t time_ms = 0;
    bool live = false;
    bool has_toa = false;  // a TOA-shaped option under the kind table of the time it arrived
    bool data = false;     // the kept packet carried payload (else: the handshake ACK)
    uint32_t next_seq = 0;  // the SYN's sequence number + 1 (+ data in the SYN)
    uint8_t options_length = 0;  // 0: the SYN only, nothing after it yet
    uint8_t options[kMaxOptions] = {};
  };

  void Expire(uint64_t now_ms);
  void Kill(uint32_t slot);
  uint32_t Append();

  size_t capacity_;
  std::vector<Slot> slots_;  // a ring in arrival order: head_ is the oldest
  size_t head_ = 0;
  size_t used_ = 0;          // slots between head_ and the tail, live or consumed
  uint64_t max_age_ms_;
  std::unordered_map<TupleKey, uint32_t, TupleHash> index_;
  TapCounters counters_;
};

// Normalises ::ffff:a.b.c.d to IPv4 (what the packet parser does for packets).
Address Unmapped(const Address& a);

}  // namespace toa

#endif  // NODE_TOA_TAP_TABLE_H
