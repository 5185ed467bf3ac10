// N-API glue: argument checks, and conversion of toa_sys/toa_parse results to JavaScript values.
// Policy (trust, caching, which option to believe) lives in TypeScript, not here.
#include <napi.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "js_values.h"
#include "record_layout.h"
#include "tap_addon.h"
#include "toa_parse.h"
#include "toa_sys.h"
// proxy_addon.cc: the PROXY protocol header parser.
void RegisterProxy(Napi::Env env, Napi::Object exports, Napi::Object testing);
// udp_addon.cc: UDP (SPP, PROXY v2 datagrams, DPVS UOA).
void RegisterUdp(Napi::Env env, Napi::Object exports, Napi::Object testing);

namespace {

using toa::AddressValue;
using toa::FdArgument;
using toa::IsUint8Array;
using toa::KindTableArgument;
using toa::ToaOptionsValue;

// Big enough for an IPv6 header with a few extension headers plus a full TCP header.
constexpr size_t kSynBufferSize = 512;
// A saved SYN never exceeds the MTU of the device it came in on; refuse anything absurd.
constexpr size_t kSynBufferLimit = 65536;

Napi::Value PacketValue(Napi::Env env, const toa::Packet& p) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("ok", p.ok);
  if (!p.ok) return o;
  o.Set("src", AddressValue(env, p.src));
  o.Set("dst", AddressValue(env, p.dst));
  o.Set("flags", p.tcp_flags);
  o.Set("payloadLength", p.payload_length);
  o.Set("options", ToaOptionsValue(env, p.toa));
  return o;
}

// setSaveSyn(fd, on) -> errno (0 on success)
Napi::Value SetSaveSyn(const Napi::CallbackInfo& info) {
  const int32_t fd = FdArgument(info, 0);
  const bool on = info.Length() < 2 || info[1].ToBoolean().Value();
  return Napi::Number::New(info.Env(), toa::SetSaveSyn(fd, on));
}

// getSaveSyn(fd) -> 0 | 1, or -errno
Napi::Value GetSaveSyn(const Napi::CallbackInfo& info) {
  bool on = false;
  const int err = toa::GetSaveSyn(FdArgument(info, 0), &on);
  return Napi::Number::New(info.Env(), err != 0 ? -err : (on ? 1 : 0));
}

// What one connection's saved SYN, the server's tap and, when asked, getpeername told: read once,
// parsed once.
struct LookupResult {
  int err = 0;
  bool syn = false;
  toa::Packet packet;  // the saved SYN, or the tap's SYN (peer and options only) under a syncookie
  toa::TapHit tap;
  bool with_name = false;
  int name_err = 0;
  toa::Address name;
};

// One getsockopt per connection. The tap, when the server has one and the SYN did not settle it,
// is asked after it with the saved SYN, which names both ends and the sequence number to take:
// packet sockets look in their table (no syscall while the ring is empty), the sock_ops program's
// reader in the slot the program filled (memory reads). getpeername only when asked (a vendor module may be loaded).
LookupResult DoLookup(int fd, const uint8_t* table, bool with_name, toa::Tap* tap) {
  LookupResult r;
  uint8_t stack_buffer[kSynBufferSize];
  std::vector<uint8_t> heap_buffer;
  uint8_t* buffer = stack_buffer;
  size_t length = 0;
  r.err = toa::ReadSavedSyn(fd, buffer, sizeof stack_buffer, &length);
  if (r.err == ENOBUFS) {
    heap_buffer.resize(kSynBufferLimit);
    buffer = heap_buffer.data();
    r.err = toa::ReadSavedSyn(fd, buffer, heap_buffer.size(), &length);
  }
  r.syn = r.err == 0 && length > 0;
  if (r.syn) r.packet = toa::ParsePacket(buffer, length, table);
  // A saved SYN with exactly one option naming a client settles the connection whatever the
  // resolver's trust (lib/core/decide.ts: the SYN's option comes first, and the packets after it
  // come from the same peer, trusted or not); otherwise the tap may hold its TOA.
  const bool settled = r.packet.ok && r.packet.toa.count == 1 && r.packet.toa.options[0].status == toa::kOptionUsable;
  if (tap != nullptr && tap->open() && !settled) {
    // A tap that cannot name the connection's ends answers nothing; the SYN's errno stays.
    if (tap->Claim(fd, r.packet.ok ? &r.packet : nullptr, table, &r.tap) == 0 && !r.packet.ok && r.tap.syn_found) {
      r.packet.ok = true;
      r.packet.src = r.tap.peer;
      r.packet.toa = r.tap.syn_options;
    }
  }
  r.with_name = with_name;
  if (with_name) r.name_err = toa::PeerName(fd, &r.name);
  return r;
}

void PutAddress(uint8_t* out, const toa::Address& a) {
  out[0] = a.family;
  out[1] = static_cast<uint8_t>(a.port >> 8);
  out[2] = static_cast<uint8_t>(a.port);
  std::memcpy(out + 3, a.bytes, 16);
}

void PutOption(uint8_t* out, const toa::ToaOption& t) {
  namespace r = toa::record;
  out[r::kOptionKind] = t.kind;
  out[r::kOptionLength] = t.length;
  out[r::kOptionLayout] = t.layout;
  out[r::kOptionStatus] = t.status;
  PutAddress(out + r::kOptionClient, t.client);
  if (t.layout == toa::kLayoutVtoa) {
    out[r::kOptionVid] = static_cast<uint8_t>(t.vid >> 24);
    out[r::kOptionVid + 1] = static_cast<uint8_t>(t.vid >> 16);
    out[r::kOptionVid + 2] = static_cast<uint8_t>(t.vid >> 8);
    out[r::kOptionVid + 3] = static_cast<uint8_t>(t.vid);
    PutAddress(out + r::kOptionVip, t.vip);
  }
}

void PutOptions(uint8_t* count, uint8_t* options, const toa::ToaOptionList& list) {
  *count = list.count;
  for (size_t i = 0; i < list.count; i++) PutOption(options + i * toa::record::kOptionSize, list.options[i]);
}

void WriteRecord(const LookupResult& result, uint8_t* out) {
  namespace r = toa::record;
  uint8_t flags = 0;
  out[r::kCount] = 0;
  out[r::kAckCount] = 0;
  if (result.syn) flags |= r::kFlagSyn;
  if (result.packet.ok) {
    flags |= r::kFlagPeer;
    PutAddress(out + r::kPeer, result.packet.src);
    PutOptions(out + r::kCount, out + r::kOptions, result.packet.toa);
  }
  if (result.tap.found) {
    flags |= r::kFlagAck;
    if (result.tap.data) flags |= r::kFlagAckData;
    PutAddress(out + r::kPeer, result.tap.peer);
    PutOptions(out + r::kAckCount, out + r::kAckOptions, result.tap.options);
  }
  if (result.with_name && result.name_err == 0) {
    flags |= r::kFlagName;
    PutAddress(out + r::kName, result.name);
  }
  out[r::kFlags] = flags;
}

bool IsRecord(const Napi::CallbackInfo& info, size_t index) {
  return IsUint8Array(info, index) && info[index].As<Napi::Uint8Array>().ByteLength() >= toa::record::kSize;
}

// A reader bound to one kind table, one record and, when the server has one, its tap, checked
// once (makeSynReader): per connection only the fd crosses N-API. The typed arrays and the tap
// are held by references, so their memory stays put and alive as long as the function.
struct SynReader {
  Napi::Reference<Napi::Uint8Array> table;
  Napi::Reference<Napi::Uint8Array> record;
  Napi::ObjectReference tap_object;
  std::unique_ptr<toa::Tap>* tap = nullptr;  // the tap's slot: empty once the tap is closed
  const uint8_t* table_data;
  uint8_t* record_data;
  bool with_name;
};

// reader(fd) -> errno of the saved-SYN read (0 when read), the record filled as
// native/record_layout.h says. The fd is read with one N-API call (its status says whether it is
// a number).
Napi::Value ReadSynBound(const Napi::CallbackInfo& info) {
  const auto* reader = static_cast<const SynReader*>(info.Data());
  int32_t fd = -1;
  if (info.Length() < 1 || napi_get_value_int32(info.Env(), info[0], &fd) != napi_ok) {
    throw Napi::TypeError::New(info.Env(), "fd must be a number");
  }
  if (fd < 0) throw Napi::RangeError::New(info.Env(), "fd must be >= 0");
  toa::Tap* tap = reader->tap != nullptr ? reader->tap->get() : nullptr;
  const LookupResult result = DoLookup(fd, reader->table_data, reader->with_name, tap);
  WriteRecord(result, reader->record_data);
  return Napi::Number::New(info.Env(), result.err);
}

// makeSynReader(kindTable, record, withPeerName, tap?) -> reader(fd)
Napi::Value MakeSynReader(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint8_t* table = KindTableArgument(info, 0);
  if (!IsRecord(info, 1)) throw Napi::TypeError::New(env, "record must be a Uint8Array of recordLayout.size bytes");
  std::unique_ptr<toa::Tap>* tap = nullptr;
  if (info.Length() > 3 && !info[3].IsUndefined() && !info[3].IsNull()) tap = TapSlot(env, info[3]);
  auto* reader = new SynReader();
  reader->table = Napi::Persistent(info[0].As<Napi::Uint8Array>());
  reader->record = Napi::Persistent(info[1].As<Napi::Uint8Array>());
  if (tap != nullptr) reader->tap_object = Napi::Persistent(info[3].As<Napi::Object>());
  reader->tap = tap;
  reader->table_data = table;
  reader->record_data = info[1].As<Napi::Uint8Array>().Data();
  reader->with_name = info.Length() > 2 && info[2].ToBoolean().Value();
  Napi::Function fn = Napi::Function::New(env, ReadSynBound, "readSyn", reader);
  fn.AddFinalizer([](Napi::Env, SynReader* r) { delete r; }, reader);
  return fn;
}

// createListener(host, port, backlog, reusePort, ipv6Only) -> fd, or -errno
Napi::Value CreateListener(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsNumber()) {
    throw Napi::TypeError::New(env, "createListener(host, port, backlog, reusePort, ipv6Only)");
  }
  toa::ListenOptions options;
  options.address = toa::AddressArgument(info, 0, "host");
  options.address.port = static_cast<uint16_t>(info[1].As<Napi::Number>().Uint32Value());
  options.backlog = info[2].As<Napi::Number>().Int32Value();
  options.reuse_port = info[3].ToBoolean().Value();
  options.ipv6_only = info[4].ToBoolean().Value();
  int fd = -1;
  const int err = toa::CreateListener(options, &fd);
  return Napi::Number::New(env, err != 0 ? -err : fd);
}

// isTcpListener(fd) -> boolean, or -errno
Napi::Value IsTcpListener(const Napi::CallbackInfo& info) {
  bool listening = false;
  const int err = toa::IsTcpListener(FdArgument(info, 0), &listening);
  if (err != 0) return Napi::Number::New(info.Env(), -err);
  return Napi::Boolean::New(info.Env(), listening);
}

Napi::Object RecordLayout(Napi::Env env) {
  namespace r = toa::record;
  Napi::Object o = Napi::Object::New(env);
  const auto set = [&](const char* name, size_t value) { o.Set(name, static_cast<double>(value)); };
  set("size", r::kSize);
  set("flags", r::kFlags);
  set("peer", r::kPeer);
  set("name", r::kName);
  set("count", r::kCount);
  set("options", r::kOptions);
  set("optionSize", r::kOptionSize);
  set("optionKind", r::kOptionKind);
  set("optionLength", r::kOptionLength);
  set("optionLayout", r::kOptionLayout);
  set("optionStatus", r::kOptionStatus);
  set("optionClient", r::kOptionClient);
  set("optionVid", r::kOptionVid);
  set("optionVip", r::kOptionVip);
  set("flagSyn", r::kFlagSyn);
  set("flagPeer", r::kFlagPeer);
  set("flagName", r::kFlagName);
  set("ackCount", r::kAckCount);
  set("ackOptions", r::kAckOptions);
  set("flagAck", r::kFlagAck);
  set("flagAckData", r::kFlagAckData);
  set("layoutVtoa", toa::kLayoutVtoa);
  return o;
}

// --- testing: what the tests use to reach the parser and the syscalls without the record. ---

// testing.lookup(fd, kindTable, withPeerName) -> { errno, syn, peer?, options?, name?, nameErrno? }
Napi::Value Lookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int32_t fd = FdArgument(info, 0);
  const uint8_t* table = KindTableArgument(info, 1);
  const LookupResult r = DoLookup(fd, table, info.Length() > 2 && info[2].ToBoolean().Value(), nullptr);
  Napi::Object result = Napi::Object::New(env);
  result.Set("errno", r.err);
  result.Set("syn", r.syn);
  if (r.syn && r.packet.ok) {
    result.Set("peer", AddressValue(env, r.packet.src));
    result.Set("options", ToaOptionsValue(env, r.packet.toa));
  }
  if (r.with_name) {
    if (r.name_err == 0) {
      result.Set("name", AddressValue(env, r.name));
    } else {
      result.Set("nameErrno", r.name_err);
    }
  }
  return result;
}

// testing.parse(bytes, kindTable) -> { ok, src, dst, flags, payloadLength, options }
Napi::Value Parse(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IsUint8Array(info, 0)) {
    throw Napi::TypeError::New(env, "packet must be a Uint8Array or Buffer");
  }
  auto bytes = info[0].As<Napi::Uint8Array>();
  const uint8_t* table = KindTableArgument(info, 1);
  return PacketValue(env, toa::ParsePacket(bytes.Data(), bytes.ByteLength(), table));
}

// testing.record(packet, kindTable, record, nameAddress?, namePort?): fills `record` as readSyn()
// would for a socket whose saved SYN is `packet` (and whose getpeername is the name given), so the
// record's layout is tested with any SYN, TOA, VTOA and name.
Napi::Value Record(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IsUint8Array(info, 0)) throw Napi::TypeError::New(env, "packet must be a Uint8Array or Buffer");
  const uint8_t* table = KindTableArgument(info, 1);
  if (!IsRecord(info, 2)) throw Napi::TypeError::New(env, "record must be a Uint8Array of recordLayout.size bytes");
  auto bytes = info[0].As<Napi::Uint8Array>();
  LookupResult result;
  result.syn = bytes.ByteLength() > 0;
  result.packet = toa::ParsePacket(bytes.Data(), bytes.ByteLength(), table);
  if (info.Length() > 4 && info[3].IsString() && info[4].IsNumber()) {
    result.with_name = true;
    result.name = toa::AddressArgument(info, 3, "name address");
    result.name.port = static_cast<uint16_t>(info[4].As<Napi::Number>().Uint32Value());
  }
  WriteRecord(result, info[2].As<Napi::Uint8Array>().Data());
  return env.Undefined();
}

// testing.defaultKindTable() -> Uint8Array(256): the native parser's own idea of the defaults.
Napi::Value DefaultKindTable(const Napi::CallbackInfo& info) {
  auto table = Napi::Uint8Array::New(info.Env(), toa::kKindTableSize);
  toa::DefaultKindTable(table.Data());
  return table;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("savedSynSupported", Napi::Boolean::New(env, toa::SavedSynSupported()));
  exports.Set("recordLayout", RecordLayout(env));
  exports.Set("setSaveSyn", Napi::Function::New(env, SetSaveSyn, "setSaveSyn"));
  exports.Set("getSaveSyn", Napi::Function::New(env, GetSaveSyn, "getSaveSyn"));
  exports.Set("makeSynReader", Napi::Function::New(env, MakeSynReader, "makeSynReader"));
  exports.Set("createListener", Napi::Function::New(env, CreateListener, "createListener"));
  exports.Set("isTcpListener", Napi::Function::New(env, IsTcpListener, "isTcpListener"));
  Napi::Object testing = Napi::Object::New(env);
  testing.Set("lookup", Napi::Function::New(env, Lookup, "lookup"));
  testing.Set("parse", Napi::Function::New(env, Parse, "parse"));
  testing.Set("record", Napi::Function::New(env, Record, "record"));
  testing.Set("defaultKindTable", Napi::Function::New(env, DefaultKindTable, "defaultKindTable"));
  RegisterTap(env, exports, testing);
  RegisterProxy(env, exports, testing);
  RegisterUdp(env, exports, testing);
  exports.Set("testing", testing);
  return exports;
}

}  // namespace

NODE_API_MODULE(node_toa, Init)
