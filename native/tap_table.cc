#include "tap_table.h"

#include <algorithm>
#include <cstring>
#include <random>

namespace toa {

bool TupleKey::operator==(const TupleKey& o) const {
  return family == o.family && sport == o.sport && dport == o.dport &&
         std::memcmp(src, o.src, sizeof src) == 0 && std::memcmp(dst, o.dst, sizeof dst) == 0;
}

size_t TupleHash::operator()(const TupleKey& k) const {
  uint64_t words[5];
  std::memcpy(&words[0], k.src, 16);
  std::memcpy(&words[2], k.dst, 16);
  words[4] = (static_cast<uint64_t>(k.family) << 32) | (static_cast<uint64_t>(k.sport) << 16) | k.dport;
  uint64_t h = seed;
  for (uint64_t w : words) {
    h ^= w + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2);
    h *= 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 31;
  }
  return static_cast<size_t>(h);
}

namespace {

TupleKey KeyOf(const Address& src, const Address& dst) {
  TupleKey k;
  k.family = src.family;
  std::memcpy(k.src, src.bytes, sizeof k.src);
  std::memcpy(k.dst, dst.bytes, sizeof k.dst);
  k.sport = src.port;
  k.dport = dst.port;
  return k;
}

// What the table needs of a TCP header beyond what ParsePacket gives.
struct TcpView {
  const uint8_t* options = nullptr;
  size_t options_length = 0;
  uint32_t seq = 0;
  uint32_t payload = 0;  // as the IP header declares it: the capture may be cut short
};

// The TCP header of a packet ParsePacket accepted. The tap's filter passes only IPv6 packets
// without extension headers, so an IPv6 packet with them yields nothing here.
bool ViewTcp(const uint8_t* data, size_t length, TcpView* v) {
  size_t tcp;
  size_t ip_payload;  // bytes after the IP header, as declared
  if ((data[0] >> 4) == 4) {
    tcp = static_cast<size_t>(data[0] & 0x0f) * 4;
    const size_t total = (static_cast<size_t>(data[2]) << 8) | data[3];
    ip_payload = total > tcp ? total - tcp : 0;
  } else if (length >= 40 && data[6] == 6) {
    tcp = 40;
    ip_payload = (static_cast<size_t>(data[4]) << 8) | data[5];
  } else {
    return false;
  }
  if (tcp + 20 > length) return false;
  const uint8_t* h = data + tcp;
  const size_t header = static_cast<size_t>(h[12] >> 4) * 4;
  if (header < 20 || tcp + header > length) return false;
  v->options = h + 20;
  v->options_length = header - 20;
  v->seq = (static_cast<uint32_t>(h[4]) << 24) | (static_cast<uint32_t>(h[5]) << 16) |
           (static_cast<uint32_t>(h[6]) << 8) | h[7];
  v->payload = static_cast<uint32_t>(ip_payload > header ? ip_payload - header : 0);
  return true;
}

// Whether two packets name the same clients: their TOA-shaped options, as read. Not their whole
// option blocks: the timestamps beside the option differ from one packet of a connection to the next.
bool SameToa(const ToaOptionList& a, const ToaOptionList& b) {
  if (a.count != b.count) return false;
  for (size_t i = 0; i < a.count; i++) {
    const ToaOption& x = a.options[i];
    const ToaOption& y = b.options[i];
    if (x.kind != y.kind || x.length != y.length || x.layout != y.layout || x.status != y.status ||
        x.vid != y.vid || !SameAddress(x.client, y.client) || !SameAddress(x.vip, y.vip)) {
      return false;
    }
  }
  return true;
}

// A power of two, at least twice the capacity: probes stay short.
size_t BucketCount(size_t capacity) {
  size_t buckets = 16;
  while (buckets < 2 * capacity) buckets <<= 1;
  return buckets;
}

uint64_t RandomSeed() {
  std::random_device random;
  return (static_cast<uint64_t>(random()) << 32) ^ random();
}

}  // namespace

TupleTable::TupleTable(size_t capacity, uint64_t max_age_ms)
    : TupleTable(capacity, max_age_ms, RandomSeed()) {}

TupleTable::TupleTable(size_t capacity, uint64_t max_age_ms, uint64_t hash_seed)
    : capacity_(capacity == 0 ? 1 : capacity),
      slots_(capacity_),
      max_age_ms_(max_age_ms),
      buckets_(BucketCount(capacity_)),
      mask_(buckets_.size() - 1) {
  hash_.seed = hash_seed;
}

uint32_t TupleTable::Find(const TupleKey& key, size_t h) const {
  for (size_t i = h & mask_;; i = (i + 1) & mask_) {
    const Bucket& b = buckets_[i];
    if (b.slot == 0) return 0;
    if (b.hash == static_cast<uint32_t>(h) && slots_[b.slot - 1].key == key) return b.slot;
  }
}

void TupleTable::Index(size_t h, uint32_t slot) {
  size_t i = h & mask_;
  while (buckets_[i].slot != 0) i = (i + 1) & mask_;
  buckets_[i].slot = slot + 1;
  buckets_[i].hash = static_cast<uint32_t>(h);
  live_++;
}

// Backward-shift deletion: the entries after the hole that probed past it move up, so no
// tombstone is needed and a probe stops at the first empty bucket.
void TupleTable::Unindex(uint32_t slot) {
  size_t i = hash_(slots_[slot].key) & mask_;
  while (buckets_[i].slot != slot + 1) i = (i + 1) & mask_;
  for (size_t j = (i + 1) & mask_; buckets_[j].slot != 0; j = (j + 1) & mask_) {
    const size_t home = buckets_[j].hash & mask_;
    // The entry at j may fill the hole at i unless its home lies cyclically in (i, j].
    const bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (stays) continue;
    buckets_[i] = buckets_[j];
    i = j;
  }
  buckets_[i] = Bucket();
  live_--;
}

bool HasUncommonOption(const uint8_t* options, size_t length) {
  size_t i = 0;
  while (i < length) {
    const uint8_t kind = options[i];
    if (kind == 0) return false;
    if (kind == 1) {
      i++;
      continue;
    }
    if (!IsCommonOptionKind(kind)) return true;
    if (i + 1 >= length) return false;
    const uint8_t len = options[i + 1];
    if (len < 2 || len > length - i) return false;
    i += len;
  }
  return false;
}

void TupleTable::Kill(uint32_t slot) {
  Slot& s = slots_[slot];
  if (!s.live) return;
  Unindex(slot);
  s.live = false;
}

void TupleTable::Expire(uint64_t now_ms) {
  while (used_ > 0) {
    Slot& s = slots_[head_];
    if (s.live) {
      if (now_ms - s.time_ms <= max_age_ms_) return;
      Unindex(static_cast<uint32_t>(head_));
      s.live = false;
      counters_.expired++;
    }
    head_ = (head_ + 1) % capacity_;
    used_--;
  }
}

uint32_t TupleTable::NewSlot(const TupleKey& key, size_t hash, uint64_t now_ms) {
  Expire(now_ms);
  if (used_ == capacity_) {
    Slot& oldest = slots_[head_];
    if (oldest.live) {
      Unindex(static_cast<uint32_t>(head_));
      oldest.live = false;
      counters_.evictions++;
    }
    head_ = (head_ + 1) % capacity_;
    used_--;
  }
  // head_ + used_ only ever grows by one per append, so the ring fills slot 0, 1, 2, ... first.
  const size_t slot = (head_ + used_) % capacity_;
  used_++;
  Slot& s = slots_[slot];
  s.key = key;
  s.time_ms = now_ms;
  s.live = true;
  s.has_syn = false;
  s.syn_options_length = 0;
  s.count = 0;
  Index(hash, static_cast<uint32_t>(slot));
  counters_.inserted++;
  return static_cast<uint32_t>(slot);
}

void TupleTable::Keep(Slot& s, uint32_t seq, bool shaped, bool data, const uint8_t* options, size_t length) {
  Kept* k = nullptr;
  for (uint8_t i = 0; i < s.count; i++) {
    if (s.kept[i].seq != seq) continue;
    // The first packet with a TOA-shaped option decides, as the first such option decides within
    // a packet: the first data packet after a tagged ACK (same sequence number) never overrides it.
    if (s.kept[i].has_toa || !shaped) return;
    k = &s.kept[i];
    break;
  }
  // Full: the last place takes the newest, the first ones (the handshake's) stay.
  if (k == nullptr) k = s.count < kCandidates ? &s.kept[s.count++] : &s.kept[kCandidates - 1];
  k->seq = seq;
  k->loss_generation = loss_generation_;
  k->has_toa = shaped;
  k->data = data;
  std::memcpy(k->options, options, length);
  k->options_length = static_cast<uint8_t>(length);
}

bool TupleTable::Offer(const uint8_t* data, size_t length, const uint8_t* kind_table, uint64_t now_ms) {
  const Packet p = ParsePacket(data, length, kind_table);
  TcpView v;
  // Both ends of a connection have one family. An IPv6 packet from ::ffff:a.b.c.d (read as IPv4)
  // to a plain IPv6 address would otherwise key like an IPv4 tuple whose destination is the IPv6
  // address's first four bytes.
  if (!p.ok || p.src.family != p.dst.family || !ViewTcp(data, length, &v) || v.options_length > kMaxOptions) {
    counters_.malformed++;
    return false;
  }
  counters_.packets++;
  const bool syn = (p.tcp_flags & kTcpSyn) != 0;
  if (syn) counters_.syns++;
  // SYN-ACKs and resets say nothing of a client.
  if ((p.tcp_flags & kTcpRst) != 0 || (syn && (p.tcp_flags & kTcpAck) != 0)) return true;
  const bool uncommon = HasUncommonOption(v.options, v.options_length);
  if (!uncommon && !syn) return true;
  const TupleKey key = KeyOf(p.src, p.dst);
  const size_t hash = hash_(key);
  const uint32_t found = Find(key, hash);
  if (syn) {
    // A new connection on this tuple: whatever was kept belonged to an earlier one.
    if (found != 0) Kill(found - 1);
    // A SYN with only the common options holds nothing to keep (the filter passes every SYN, so
    // that this forgetting happens).
    if (!uncommon) return true;
    Slot& s = slots_[NewSlot(key, hash, now_ms)];
    s.has_syn = true;
    s.syn_loss_generation = loss_generation_;
    s.next_seq = SeqAfterSyn(v.seq, v.payload);
    std::memcpy(s.syn_options, v.options, v.options_length);
    s.syn_options_length = static_cast<uint8_t>(v.options_length);
    return true;
  }
  const bool shaped = p.toa.count > 0;
  if (found == 0) {
    counters_.unmatched++;  // the SYN had only common options (the usual case), or came before the tap
    Slot& s = slots_[NewSlot(key, hash, now_ms)];
    Keep(s, v.seq, shaped, v.payload > 0, v.options, v.options_length);
  } else {
    Slot& s = slots_[found - 1];
    if (s.has_syn && v.seq != s.next_seq) {
      // Not the packet that completes the held SYN's handshake nor its first data byte.
      counters_.bad_seq++;
      return true;
    }
    if (!s.has_syn) counters_.unmatched++;
    Keep(s, v.seq, shaped, v.payload > 0, v.options, v.options_length);
  }
  if (shaped) counters_.toa_found++;
  return true;
}

void TupleTable::Take(const TakeQuery& query, const uint8_t* kind_table, uint64_t now_ms, TapHit* out) {
  out->found = false;
  out->syn_found = false;
  const Address src = Unmapped(query.peer);
  const Address dst = Unmapped(query.local);
  if (src.family != dst.family) return;
  const TupleKey key = KeyOf(src, dst);
  const uint32_t found = Find(key, hash_(key));
  if (found == 0) return;
  const uint32_t slot = found - 1;
  const Slot& s = slots_[slot];
  Kill(slot);  // consumed: the resolver caches the answer on the socket
  if (now_ms - s.time_ms > max_age_ms_) {
    counters_.expired++;
    return;
  }
  bool has_next = query.has_next_seq;
  uint32_t next = query.next_seq;
  if (s.has_syn) {
    if (has_next && s.next_seq != next) {
      counters_.stale++;  // the held SYN started another connection on this tuple
      return;
    }
    if (!has_next) {
      // No saved SYN (a syncookie): the held one stands in, unless packets were lost since it came.
      if (s.syn_loss_generation != loss_generation_) {
        counters_.stale++;
        return;
      }
      FindToaOptions(s.syn_options, s.syn_options_length, kind_table, true, &out->syn_options);
      out->syn_found = true;
      has_next = true;
      next = s.next_seq;
    }
  }
  const Kept* chosen = nullptr;
  ToaOptionList chosen_toa;
  for (uint8_t i = 0; i < s.count; i++) {
    const Kept& k = s.kept[i];
    if (has_next) {
      if (k.seq == next) chosen = &k;
      continue;
    }
    // Nothing to check the packets against: only packets kept since the last loss, and only when
    // every TOA-bearing one names the same clients (a reused tuple's earlier connection may not).
    if (k.loss_generation != loss_generation_) {
      counters_.stale++;
      return;
    }
    ToaOptionList list;
    FindToaOptions(k.options, k.options_length, kind_table, false, &list);
    if (list.count == 0) continue;
    if (chosen != nullptr && !SameToa(chosen_toa, list)) {
      counters_.stale++;
      return;
    }
    if (chosen == nullptr) {
      chosen = &k;
      chosen_toa = list;
    }
  }
  out->peer = src;
  if (chosen == nullptr) return;
  // Never a SYN: F9 89 here is a port, not a TCP Fast Open cookie.
  FindToaOptions(chosen->options, chosen->options_length, kind_table, false, &out->options);
  if (out->options.count == 0) return;
  out->found = true;
  out->data = chosen->data;
}

}  // namespace toa
