// The ACK tap's table: 4-tuple -> the TCP options of the packets after the SYN that may hold a
// TOA. Plain bytes in, no syscalls and no N-API (the only thing it asks the system for is the hash
// seed), so it is unit-tested through testing.offer() and fuzzed alone (fuzz/tap_table_fuzz.cc).
// The packet sockets that feed it are in tap_sockets.h; docs/ack-tap.md "The table" is its
// contract in prose.
#ifndef NODE_TOA_TAP_TABLE_H
#define NODE_TOA_TAP_TABLE_H

#include <cstddef>
#include <cstdint>
#include "mapped_array.h"
#include "toa_parse.h"

// Every figure of the tap's stats(), once, in the order JavaScript sees them (lib/addon/native.ts
// NativeTapStats): COUNTER(field, "name") is a TapCounters field ("Tap:" ones are counted by the
// sockets, tap_sockets.cc), TABLE(method, "name") what the table says of itself. TapCounters below
// and tap_addon.cc's Stats() both expand it, so a counter cannot be added to one and missed by
// the other.
#define TOA_TAP_STATS(COUNTER, TABLE)                                                                \
  COUNTER(packets, "packets")       /* packets that passed the filter and were read */               \
  COUNTER(syns, "syns")             /* SYNs among them (each starts a fresh entry for its tuple) */  \
  COUNTER(toa_found, "toaFound")    /* kept packets with a TOA-shaped option */                      \
  COUNTER(unmatched, "unmatched")   /* packets kept on a tuple whose SYN the tap did not hold */     \
  COUNTER(bad_seq, "badSeq")        /* packets whose sequence number is not the held SYN's + 1 */    \
  COUNTER(inserted, "inserted")     /* entries created */                                            \
  TABLE(size, "tableSize")          /* live entries */                                               \
  TABLE(capacity, "capacity")       /* the bound */                                                  \
  COUNTER(evictions, "evictions")   /* live entries pushed out by capacity (oldest first) */         \
  COUNTER(expired, "expired")       /* live entries dropped for age */                               \
  COUNTER(drops, "drops")           /* Tap: dropped by the kernel, the buffer was full */            \
  COUNTER(lookups, "lookups")       /* Tap: lookups of accepted sockets */                           \
  COUNTER(hits, "hits")             /* Tap: lookups that found TOA-shaped options (after a SYN, or in a held one) */                 \
  COUNTER(malformed, "malformed")   /* passed the filter but did not parse as TCP */                 \
  COUNTER(stale, "stale")           /* lookups that refused an entry of another connection */      \
  COUNTER(unseen, "unseen")         /* Tap: connections the sock_ops program never saw */          \
  COUNTER(storage_lookups, "storageLookups") /* Tap: sock_ops lookups its table did not answer (a bpf() call each) */

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

// What the caller knows of the connection it looks up.
struct TakeQuery {
  Address peer;
  Address local;
  // The sequence number the handshake ACK and the first data byte carry (the saved SYN's + 1 +
  // its data), when the caller read the saved SYN; without it the table's own SYN (if it holds one)
  // decides, else only an unambiguous entry answers.
  bool has_next_seq = false;
  uint32_t next_seq = 0;
};

// What a lookup found: the TOA-shaped options of the packet that carried them, its IP source, and
// whether it was the handshake ACK or a packet with data; and, for a caller without a saved SYN,
// the options of the SYN the table held (syn_found).
struct TapHit {
  Address peer;
  bool found = false;
  ToaOptionList options;
  bool data = false;
  bool syn_found = false;
  ToaOptionList syn_options;
};

// The packets that reach the table (tap_filter.cc passes only these, from the trusted sources,
// and Offer applies the same rule) are SYNs, and packets after them that carry an option other
// than those every TCP stack sends. A SYN forgets what its 4-tuple held (an earlier connection's); one with an uncommon option
// is kept (a TOA in a SYN the kernel answered with a syncookie, and so did not save). A packet after the
// SYN is kept under its sequence number; the lookup asks for the one the saved SYN's sequence
// number + 1 names, so a reused 4-tuple, a forged packet or a later segment never answers for
// this connection. A SYN the table holds plays the saved SYN's part when the kernel saved none.
// Options are kept raw and parsed at lookup with the caller's kind table, so kinds configured
// after the packet arrived still count. Capacity and age bound the table; the oldest entry goes
// first.
class TupleTable {
 public:
  static constexpr size_t kMaxOptions = 40;
  // Packets kept per tuple: the handshake ACK, the first data packet, and the latest other.
  static constexpr size_t kCandidates = 3;

  // The hash seed comes from std::random_device.
  TupleTable(size_t capacity, uint64_t max_age_ms);
  // A seed of the caller's: the fuzzer makes a table per input, and std::random_device's
  // constructor runs cpuid, a trap to the hypervisor in a VM, which cost it a third of its speed.
  TupleTable(size_t capacity, uint64_t max_age_ms, uint64_t hash_seed);

  // Feeds one packet (starting at the IP header). `kind_table` decides whether a packet's options
  // hold a TOA (a packet with one replaces a kept one without one that has its sequence number).
  // Returns whether the packet parsed as TCP.
  bool Offer(const uint8_t* data, size_t length, const uint8_t* kind_table, uint64_t now_ms);

  // Finds and consumes the entry of (peer -> local); out->found when it holds a packet after the
  // SYN with a TOA-shaped option under `kind_table` for this connection.
  void Take(const TakeQuery& query, const uint8_t* kind_table, uint64_t now_ms, TapHit* out);

  // The sockets lost packets: entries kept before now can no longer answer without a sequence
  // number to check them (the lost one may have been their connection's successor).
  void NoteLoss() { loss_generation_++; }

  size_t size() const { return live_; }
  size_t capacity() const { return capacity_; }
  TapCounters& counters() { return counters_; }
  const TapCounters& counters() const { return counters_; }

 private:
  struct Kept {
    uint32_t seq = 0;
    uint32_t loss_generation = 0;
    bool has_toa = false;  // a TOA-shaped option under the kind table of the time it arrived
    bool data = false;     // the packet carried payload (else: the handshake ACK)
    uint8_t options_length = 0;
    uint8_t options[kMaxOptions] = {};
  };
  struct Slot {
    TupleKey key;
    uint64_t time_ms = 0;
    bool live = false;
    bool has_syn = false;
    uint32_t syn_loss_generation = 0;
    uint32_t next_seq = 0;  // the held SYN's sequence number + 1 (+ data in the SYN)
    uint8_t syn_options_length = 0;
    uint8_t syn_options[kMaxOptions] = {};
    uint8_t count = 0;  // packets kept after the SYN
    Kept kept[kCandidates];
  };

  // The index: open addressing with linear probing over a power-of-two array of at least twice
  // the capacity. Slots and index are mapped at construction (MappedArray, on huge pages where
  // offered): nothing is allocated per connection, and a page fault comes once per 2 MB filled.
  struct Bucket {
    uint32_t slot = 0;  // slot + 1; 0: empty
    uint32_t hash = 0;  // the key's hash, low bits: where its probe starts
  };
  // A packet's key is hashed once: Find and Index take the hash.
  uint32_t Find(const TupleKey& key, size_t hash) const;  // slot + 1, or 0
  void Index(size_t hash, uint32_t slot);
  void Unindex(uint32_t slot);

  void Expire(uint64_t now_ms);
  void Kill(uint32_t slot);
  uint32_t NewSlot(const TupleKey& key, size_t hash, uint64_t now_ms);
  void Keep(Slot& s, uint32_t seq, bool shaped, bool data, const uint8_t* options, size_t length);

  size_t capacity_;
  MappedArray<Slot> slots_;  // a ring in arrival order: head_ is the oldest
  size_t head_ = 0;
  size_t used_ = 0;          // slots between head_ and the tail, live or consumed
  uint64_t max_age_ms_;
  uint32_t loss_generation_ = 0;
  TupleHash hash_;
  MappedArray<Bucket> buckets_;
  size_t mask_;
  size_t live_ = 0;
  TapCounters counters_;
};

// The rule the filter (tap_filter.cc) and the table share: an option kind that every TCP stack
// sends (EOL, NOP, MSS, window scale, SACK permitted, SACK, timestamps) holds no TOA.
constexpr bool IsCommonOptionKind(uint8_t kind) { return kind <= 5 || kind == 8; }

// Whether `options` hold an option of a kind that is not common (the filter's walk, in C++).
bool HasUncommonOption(const uint8_t* options, size_t length);

}  // namespace toa

#endif  // NODE_TOA_TAP_TABLE_H
