#!/usr/bin/env python3
"""User-space full-NAT L4 proxy on a TUN device that inserts TOA options.

Test helper for node-toa (python3 stdlib only).  Run it inside a network
namespace (`ip netns exec NS python3 toa_proxy.py --ns NS`).  It creates the
TUN device, configures the test topology (see README.md next to this file),
then forwards TCP between clients and the "real server" exactly like LVS
FullNAT / Tencent TOA: both addresses and the source port are rewritten, a TOA
option is inserted into the SYN and/or the handshake ACK / first data packet,
and the IP and TCP checksums are recomputed from scratch.

Control: JSON lines on stdin, JSON answers on stdout (`{"id", "ok", ...}`).
Prints `{"ready": true}` once the device is up.  Exits when stdin closes (and
then deletes the namespace given with --ns, so nothing is left behind even if
the parent was killed).
"""

import array
import collections
import fcntl
import ipaddress
import json
import os
import random
import select
import signal
import struct
import subprocess
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

CLIENTS4 = ['192.0.2.%d' % i for i in range(1, 10)]
CLIENTS6 = ['2001:db8:c::%d' % i for i in range(1, 10)]
RIP4, RIP6 = '203.0.113.10', '2001:db8:d::10'
LIP4, LIP6 = '198.51.100.2', '2001:db8:b::2'
# VIP -> backend family
VIPS = {
    '198.51.100.10': 4,
    '198.51.100.11': 6,
    '2001:db8:a::10': 6,
    '2001:db8:a::11': 4,
}
ROUTES = ['198.51.100.0/24', '2001:db8:a::/64', '2001:db8:b::/64']

LPORT_MIN, LPORT_MAX = 20000, 60000
MAX_CONNS = 20000
LINGER = 3.0          # keep an entry this long after FIN both ways / RST
IDLE_HS = 15.0        # handshake never completed
IDLE_EST = 300.0      # established but idle
RING = 1024           # forwarded packets kept for `packets`
TCP_MAX_OPTS = 40


def ip_bytes(s):
    return ipaddress.ip_address(s).packed


def ip_str(b):
    return str(ipaddress.ip_address(bytes(b)))


def csum_add(data):
    """One's complement sum (unfolded) of data in native 16-bit word order."""
    if len(data) & 1:
        data = bytes(data) + b'\0'
    return sum(array.array('H', bytes(data)))


def csum_fin(s):
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def tcp_checksum(src, dst, seg):
    if len(src) == 4:
        ph = src + dst + struct.pack('!BBH', 0, 6, len(seg))
    else:
        ph = src + dst + struct.pack('!I3xB', len(seg), 6)
    return csum_fin(csum_add(ph) + csum_add(seg))


_ip_id = [random.randint(0, 0xFFFF)]


def build_ip(src, dst, seg, tos=0, ttl=64, ident=None):
    """Build a fresh IPv4/IPv6 header (family of src) around TCP segment seg
    (a bytearray whose checksum field is recomputed here)."""
    seg[16:18] = b'\0\0'
    struct.pack_into('=H', seg, 16, tcp_checksum(src, dst, seg))
    if len(src) == 4:
        if ident is None:
            _ip_id[0] = (_ip_id[0] + 1) & 0xFFFF
            ident = _ip_id[0]
        hdr = bytearray(struct.pack('!BBHHHBBH4s4s', 0x45, tos, 20 + len(seg), ident, 0x4000,
                                    ttl, 6, 0, src, dst))
        struct.pack_into('=H', hdr, 10, csum_fin(csum_add(hdr)))
        return bytes(hdr) + bytes(seg)
    vtf = (6 << 28) | (tos << 20)
    return struct.pack('!IHBB16s16s', vtf, len(seg), 6, ttl, src, dst) + bytes(seg)


def parse_ip(pkt):
    """-> (src, dst, tcp_segment(bytearray), tos, ttl) or None if not plain TCP."""
    n = len(pkt)
    if n < 20:
        return None
    v = pkt[0] >> 4
    if v == 4:
        ihl = (pkt[0] & 15) * 4
        tot = (pkt[2] << 8) | pkt[3]
        if ihl < 20 or tot < ihl + 20 or tot > n or pkt[9] != 6:
            return None
        if ((pkt[6] << 8) | pkt[7]) & 0x3FFF:   # fragment
            return None
        return pkt[12:16], pkt[16:20], bytearray(pkt[ihl:tot]), pkt[1], pkt[8]
    if v == 6:
        if n < 60 or pkt[6] != 6:
            return None
        plen = (pkt[4] << 8) | pkt[5]
        if 40 + plen > n or plen < 20:
            return None
        tos = ((pkt[0] & 15) << 4) | (pkt[1] >> 4)
        return pkt[8:24], pkt[24:40], bytearray(pkt[40:40 + plen]), tos, pkt[7]
    return None


def walk_opts(opts):
    """Yield (offset, kind, length) for each option; stops at EOL / malformed.
    Returns normally; sets no state.  Malformed -> yields ('bad', offset)."""
    i, n = 0, len(opts)
    while i < n:
        k = opts[i]
        if k == 0:
            yield i, 0, 1
            return
        if k == 1:
            yield i, 1, 1
            i += 1
            continue
        if i + 1 >= n or opts[i + 1] < 2 or i + opts[i + 1] > n:
            yield i, -1, n - i
            return
        ln = opts[i + 1]
        yield i, k, ln
        i += ln


def strip_eol(opts):
    for off, k, ln in walk_opts(opts):
        if k == 0:
            return opts[:off]
        if k == -1:
            return opts
    return opts


def drop_ts(opts):
    """Rebuild the option list without timestamps (and without NOP padding)."""
    out = bytearray()
    for off, k, ln in walk_opts(opts):
        if k in (0, 1, 8):
            continue
        if k == -1:
            return None
        out += opts[off:off + ln]
    return bytes(out)


def parse_opts_list(opts):
    res = []
    for off, k, ln in walk_opts(opts):
        res.append({'kind': k, 'len': ln, 'hex': bytes(opts[off:off + ln]).hex()})
    return res


WHERE_POINTS = {'syn', 'ack', 'data', 'all', 'none'}
RULE_KEYS = {'where', 'kind', 'format', 'address', 'port', 'raw', 'lip', 'lip4', 'lip6', 'vid', 'vip',
             'vport', 'version', 'lport', 'node', 'alone'}


class RuleError(Exception):
    pass


class Rule:
    __slots__ = ('where', 'fmt', 'kind', 'address', 'port', 'raw', 'lip', 'vid', 'vip', 'vport',
                 'version', 'lport', 'node', 'alone', 'src')

    def __init__(self, d):
        if d is None:
            d = {}
        if not isinstance(d, dict):
            raise RuleError('rule must be an object')
        unknown = set(d) - RULE_KEYS
        if unknown:
            raise RuleError('unknown rule field(s): %s' % ', '.join(sorted(unknown)))
        self.src = d
        where = d.get('where', 'syn')
        pts = set(p.strip() for p in str(where).replace(',', '+').split('+') if p.strip())
        if not pts or not pts <= WHERE_POINTS:
            raise RuleError('bad where: %r' % (where,))
        pts.discard('none')
        self.where = frozenset(pts)
        self.fmt = d.get('format')
        if self.fmt not in (None, 'v4', 'v6', 'ali', 'vtoa', 'ali-ddos'):
            raise RuleError('bad format: %r' % (self.fmt,))
        self.kind = d.get('kind')
        if self.kind is not None and not (0 <= int(self.kind) <= 255):
            raise RuleError('bad kind')
        self.address = ip_bytes(d['address']) if d.get('address') else None
        self.port = d.get('port')
        if self.port is not None and not (0 <= int(self.port) <= 0xFFFF):
            raise RuleError('bad port')
        raw = d.get('raw')
        self.raw = bytes.fromhex(raw.replace(' ', '').replace(':', '')) if raw is not None else None
        if self.raw is not None and len(self.raw) > TCP_MAX_OPTS:
            raise RuleError('raw options longer than 40 bytes')
        self.lip = {}
        for key in ('lip', 'lip4', 'lip6'):
            if d.get(key):
                b = ip_bytes(d[key])
                self.lip[len(b)] = b
        self.vid = int(d.get('vid', 0))
        self.vip = ip_bytes(d['vip']) if d.get('vip') else None
        self.vport = d.get('vport')
        self.version = int(d.get('version', 1))
        # A fixed proxy source port instead of the counter's: two connections of this rule then
        # reach the server on the same 4-tuple (a reused tuple, as a busy proxy makes them).
        self.lport = d.get('lport')
        if self.lport is not None and not (isinstance(self.lport, int) and 1 <= self.lport <= 0xFFFF):
            raise RuleError('bad lport: %r' % (self.lport,))
        # ali-ddos: the 20 bytes after the client (the Anti-DDoS node's IP information).
        node = d.get('node')
        self.node = bytes.fromhex(node) if node is not None else None
        if self.node is not None and len(self.node) != 20:
            raise RuleError('node must be 20 bytes (40 hex digits)')
        # Replace the packet's own options instead of adding to them. None: only when the option
        # needs the whole 40-byte option space (a SYN keeps MSS, SACK-permitted and window scale
        # otherwise, and no 40-byte option fits beside them).
        alone = d.get('alone')
        if alone is not None and not isinstance(alone, bool):
            raise RuleError('alone must be true or false')
        self.alone = alone
        if self.fmt == 'v4' and self.address is not None and len(self.address) != 4:
            raise RuleError("format 'v4' needs an IPv4 address")
        if self.fmt == 'vtoa' and self.address is not None and len(self.address) != 4:
            raise RuleError("format 'vtoa' needs an IPv4 address")

    def build(self, cip, cport, vip, vport):
        """TOA option bytes for one connection."""
        if self.raw is not None:
            return self.raw
        addr = self.address if self.address is not None else bytes(cip)
        port = int(self.port) if self.port is not None else cport
        fmt = self.fmt or ('v4' if len(addr) == 4 else 'v6')
        if fmt == 'v4':
            if len(addr) != 4:
                return None
            kind = 200 if self.kind is None else int(self.kind)
            return struct.pack('!BBH4s', kind, 8, port, addr)
        if fmt == 'v6':
            if len(addr) == 4:
                addr = b'\0' * 10 + b'\xff\xff' + addr
            kind = 254 if self.kind is None else int(self.kind)
            return struct.pack('!BBH16s', kind, 20, port, addr)
        if fmt == 'ali':
            kind = 28 if self.kind is None else int(self.kind)
            return struct.pack('!BBB', kind, 3 + len(addr), self.version) + addr
        if fmt == 'ali-ddos':
            if len(addr) == 4:
                addr = b'\0' * 10 + b'\xff\xff' + addr
            kind = 249 if self.kind is None else int(self.kind)
            node = self.node if self.node is not None else ip_bytes(LIP6) + b'\0\0\0\0'
            return struct.pack('!BBH16s20s', kind, 40, port, addr, node)
        if fmt == 'vtoa':
            if len(addr) != 4:
                return None
            kind = 252 if self.kind is None else int(self.kind)
            v = self.vip if self.vip is not None else (bytes(vip) if len(vip) == 4 else b'\0' * 4)
            vp = int(self.vport) if self.vport is not None else vport
            return struct.pack('!BBH4sI4sH2x', kind, 20, port, addr, self.vid, v, vp)
        return None


class Conn:
    __slots__ = ('ckey', 'skey', 'cip', 'cport', 'vip', 'vport', 'lip', 'lport', 'rip', 'rport',
                 'rule', 'toa', 'isn', 'after_syn', 'data_done', 'fin_c', 'fin_s', 't_close',
                 't_last', 't_start', 'est')


class Proxy:
    def __init__(self, dev, ns, setup, mtu, debug):
        self.dev = dev
        self.ns = ns
        self.debug = debug
        self.mtu = mtu
        self.mss_clamp = mtu - 40 - 20 - TCP_MAX_OPTS   # room for IPv6 + any option growth
        self.vips = {ip_bytes(k): v for k, v in VIPS.items()}
        self.lip_default = {4: ip_bytes(LIP4), 16: ip_bytes(LIP6)}
        self.rip = {4: ip_bytes(RIP4), 6: ip_bytes(RIP6)}
        self.rules = {}
        self.default_rule = Rule({})
        self.c2s = {}
        self.s2c = {}
        self.lports = set()
        self.next_lport = LPORT_MIN + random.randint(0, 1000)
        self.ring = collections.deque(maxlen=RING)
        self.ring_in = collections.deque(maxlen=RING)   # as read from the TUN
        self.stats = collections.Counter()
        self.stdin_buf = b''
        self.verify_in = True
        self.tun = self.open_tun(dev)
        if setup:
            self.setup()

    # ---- device ---------------------------------------------------------
    @staticmethod
    def open_tun(dev):
        fd = os.open('/dev/net/tun', os.O_RDWR | os.O_CLOEXEC)
        fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH', dev.encode(), IFF_TUN | IFF_NO_PI))
        fl = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, fl | os.O_NONBLOCK)
        return fd

    def sysctl(self, path, val):
        try:
            with open('/proc/sys/' + path, 'w') as f:
                f.write(str(val))
        except OSError as e:
            self.log('sysctl %s: %s' % (path, e))

    def setup(self):
        d = self.dev
        for c in ('all', 'default', d):
            self.sysctl('net/ipv4/conf/%s/rp_filter' % c, 0)
        self.sysctl('net/ipv6/conf/%s/disable_ipv6' % d, 0)
        self.sysctl('net/ipv6/conf/%s/accept_ra' % d, 0)
        self.sysctl('net/ipv6/conf/%s/router_solicitations' % d, 0)
        cmds = ['link set lo up', 'link set %s addrgenmode none' % d,
                'link set %s mtu %d txqueuelen 8192 up' % (d, self.mtu)]
        for a in CLIENTS4 + [RIP4]:
            cmds.append('addr add %s/32 dev %s' % (a, d))
        for a in CLIENTS6 + [RIP6]:
            cmds.append('addr add %s/128 dev %s nodad' % (a, d))
        for r in ROUTES:
            cmds.append('route add %s dev %s' % (r, d))
        p = subprocess.run(['ip', '-batch', '-'], input='\n'.join(cmds) + '\n', text=True,
                           capture_output=True)
        if p.returncode != 0:
            raise RuntimeError('ip -batch failed: ' + p.stderr.strip())

    def log(self, msg):
        sys.stderr.write('[toa_proxy] %s\n' % msg)
        sys.stderr.flush()

    # ---- connection table -------------------------------------------------
    def alloc_lport(self, lip):
        for _ in range(LPORT_MAX - LPORT_MIN + 1):
            p = self.next_lport
            self.next_lport = p + 1 if p < LPORT_MAX else LPORT_MIN
            if (lip, p) not in self.lports:
                self.lports.add((lip, p))
                return p
        return None

    def remove(self, c):
        if self.c2s.get(c.ckey) is c:
            del self.c2s[c.ckey]
        if self.s2c.get(c.skey) is c:
            del self.s2c[c.skey]
        self.lports.discard((c.lip, c.lport))

    def new_conn(self, ckey, cip, cport, vip, vport, isn):
        if len(self.c2s) >= MAX_CONNS:
            self.stats['evicted'] += 1
            victim = None
            for c in self.c2s.values():
                if c.t_close is not None:
                    victim = c
                    break
            if victim is None:
                victim = next(iter(self.c2s.values()))
            self.remove(victim)
        fam = self.vips[vip]
        rule = self.rules.get(cip, self.default_rule)
        rip = self.rip[fam]
        lip = rule.lip.get(len(rip)) or self.lip_default[len(rip)]
        if rule.lport is not None:
            lport = rule.lport
            # The tuple's last connection may still linger in the table: the new one takes over.
            for old in [o for o in self.c2s.values() if o.lip == lip and o.lport == lport]:
                self.remove(old)
                self.stats['lport_taken_over'] += 1
            self.lports.add((lip, lport))
        else:
            lport = self.alloc_lport(lip)
        if lport is None:
            self.stats['no_lport'] += 1
            return None
        c = Conn()
        c.ckey = ckey
        c.cip, c.cport, c.vip, c.vport = cip, cport, vip, vport
        c.lip, c.lport, c.rip, c.rport = lip, lport, rip, vport
        c.skey = (rip, vport, lip, lport)
        c.rule = rule
        c.toa = rule.build(cip, cport, vip, vport) if rule.where else None
        c.isn = isn
        c.after_syn = False
        c.data_done = False
        c.fin_c = c.fin_s = c.est = False
        c.t_close = None
        c.t_start = c.t_last = time.monotonic()
        self.c2s[ckey] = c
        self.s2c[c.skey] = c
        self.stats['connections'] += 1
        return c

    def sweep(self):
        now = time.monotonic()
        dead = []
        for c in self.c2s.values():
            if c.t_close is not None:
                if now - c.t_close > LINGER:
                    dead.append(c)
            elif now - c.t_last > (IDLE_EST if c.est else IDLE_HS):
                dead.append(c)
        for c in dead:
            self.remove(c)
            self.stats['expired'] += 1

    # ---- options ----------------------------------------------------------
    def add_option(self, opts, add, alone=None):
        if alone is None:
            alone = len(add) == TCP_MAX_OPTS
        if alone:
            if len(add) > TCP_MAX_OPTS:
                return None
            if strip_eol(opts):
                self.stats['options_replaced'] += 1
            return b'\x01' * ((-len(add)) % 4) + add
        base = strip_eol(opts)
        total = len(base) + len(add)
        pad = (-total) % 4
        if total + pad > TCP_MAX_OPTS:
            nb = drop_ts(base)
            if nb is None:
                return None
            base = nb
            total = len(base) + len(add)
            pad = (-total) % 4
            if total + pad > TCP_MAX_OPTS:
                return None
            self.stats['ts_dropped'] += 1
        return base + b'\x01' * pad + add

    def clamp_mss(self, seg, doff):
        for off, k, ln in walk_opts(seg[20:doff]):
            if k == 2 and ln == 4:
                o = 20 + off + 2
                mss = (seg[o] << 8) | seg[o + 1]
                if mss > self.mss_clamp:
                    struct.pack_into('!H', seg, o, self.mss_clamp)
                    self.stats['mss_clamped'] += 1
            elif k == -1:
                return

    # ---- data path ----------------------------------------------------------
    def on_packet(self, pkt):
        st = self.stats
        st['packets_in'] += 1
        self.ring_in.append((time.time(), 'in', pkt))
        p = parse_ip(pkt)
        if p is None:
            st['ignored'] += 1
            return
        src, dst, seg, tos, ttl = p
        if len(seg) < 20:
            st['ignored'] += 1
            return
        if self.verify_in:
            # TUN without IFF_VNET_HDR gets fully checksummed packets from the
            # kernel; count any that are not (checksum offload would show here).
            ck = struct.unpack_from('=H', seg, 16)[0]
            if tcp_checksum(src, dst, self._zero_ck(seg)) != ck:
                st['csum_in_bad'] += 1
        sport = (seg[0] << 8) | seg[1]
        dport = (seg[2] << 8) | seg[3]
        flags = seg[13]
        key = (src, sport, dst, dport)
        c = self.c2s.get(key)
        if c is not None and flags & (SYN | ACK | RST) == SYN:
            if c.t_close is not None or struct.unpack_from('!I', seg, 4)[0] != c.isn:
                self.remove(c)   # client port reused: a brand new connection
                self.stats['reused'] += 1
                c = None
        if c is not None:
            return self.fwd_c2s(c, seg, flags, tos, ttl)
        if dst in self.vips:
            if flags & (SYN | ACK | RST) == SYN:
                c = self.new_conn(key, src, sport, dst, dport, struct.unpack_from('!I', seg, 4)[0])
                if c is not None:
                    return self.fwd_c2s(c, seg, flags, tos, ttl)
            st['unmatched'] += 1
            return
        c = self.s2c.get(key)
        if c is not None:
            return self.fwd_s2c(c, seg, flags, tos, ttl)
        st['unmatched'] += 1

    def fwd_c2s(self, c, seg, flags, tos, ttl):
        st = self.stats
        now = time.monotonic()
        c.t_last = now
        doff = (seg[12] >> 4) * 4
        if doff < 20 or doff > len(seg):
            st['bad_tcp'] += 1
            return
        has_data = len(seg) > doff
        insert = False
        w = c.rule.where
        if flags & SYN:
            insert = 'syn' in w
        else:
            if not c.after_syn:
                c.after_syn = True
                c.est = True
                if flags & ACK and not has_data and 'ack' in w:
                    insert = True
            if has_data and not c.data_done:
                c.data_done = True
                if 'data' in w:
                    insert = True
        if 'all' in w:
            insert = True
        if flags & RST:
            c.t_close = now
        if flags & FIN:
            c.fin_c = True
            if c.fin_s and c.t_close is None:
                c.t_close = now
        if insert and c.toa is not None:
            opts = self.add_option(bytes(seg[20:doff]), c.toa, c.rule.alone)
            if opts is None:
                st['toa_too_big'] += 1
            else:
                seg = seg[:20] + opts + seg[doff:]
                seg[12] = ((len(opts) + 20) // 4) << 4 | (seg[12] & 0x0F)
                st['toa_inserted'] += 1
        struct.pack_into('!HH', seg, 0, c.lport, c.rport)
        out = build_ip(c.lip, c.rip, seg, tos, ttl)
        self.emit(out, 'c2s')

    def fwd_s2c(self, c, seg, flags, tos, ttl):
        now = time.monotonic()
        c.t_last = now
        doff = (seg[12] >> 4) * 4
        if flags & SYN and 20 < doff <= len(seg):
            self.clamp_mss(seg, doff)
        if flags & RST:
            c.t_close = now
        if flags & FIN:
            c.fin_s = True
            if c.fin_c and c.t_close is None:
                c.t_close = now
        struct.pack_into('!HH', seg, 0, c.vport, c.cport)
        out = build_ip(c.vip, c.cip, seg, tos, ttl)
        self.emit(out, 's2c')

    def emit(self, out, tag):
        try:
            os.write(self.tun, out)
            self.stats['packets_out'] += 1
        except OSError as e:
            self.stats['write_errors'] += 1
            if self.debug:
                self.log('write: %s' % e)
        self.ring.append((time.time(), tag, out))

    # ---- control ------------------------------------------------------------
    def describe(self, t, tag, pkt):
        d = {'t': round(t, 6), 'dir': tag, 'hex': bytes(pkt).hex()}
        if len(pkt) and pkt[0] >> 4 == 4:
            d['ihl'] = (pkt[0] & 15) * 4
        p = parse_ip(pkt)
        if p is None:
            return d
        src, dst, seg, _, _ = p
        if len(seg) < 20:
            return d
        doff = (seg[12] >> 4) * 4
        fl = seg[13]
        d.update({
            'family': 4 if len(src) == 4 else 6,
            'src': ip_str(src), 'dst': ip_str(dst),
            'sport': (seg[0] << 8) | seg[1], 'dport': (seg[2] << 8) | seg[3],
            'seq': struct.unpack_from('!I', seg, 4)[0],
            'flags': ''.join(ch for bit, ch in ((SYN, 'S'), (ACK, 'A'), (PSH, 'P'), (FIN, 'F'),
                                                (RST, 'R')) if fl & bit),
            'optionsHex': bytes(seg[20:doff]).hex(),
            'options': parse_opts_list(seg[20:doff]),
            'payloadLen': max(0, len(seg) - doff),
            'tcpChecksumOk': tcp_checksum(src, dst, self._zero_ck(seg)) == struct.unpack_from('=H', seg, 16)[0],
        })
        return d

    @staticmethod
    def _zero_ck(seg):
        s = bytearray(seg)
        s[16:18] = b'\0\0'
        return s

    def conn_info(self, c):
        return {'client': ip_str(c.cip), 'cport': c.cport, 'vip': ip_str(c.vip), 'vport': c.vport,
                'lip': ip_str(c.lip), 'lport': c.lport, 'rip': ip_str(c.rip), 'rport': c.rport,
                'closing': c.t_close is not None, 'toaHex': c.toa.hex() if c.toa else None}

    def op_flood(self, m):
        count = int(m.get('count', 100))
        port = int(m['port'])
        fam = int(m.get('family', 4))
        where = m.get('where', 'ack')
        rule = Rule(m.get('rule') or {})
        rip = self.rip[fam]
        lip = rule.lip.get(len(rip)) or self.lip_default[len(rip)]
        flags = {'ack': ACK, 'syn': SYN, 'data': ACK | PSH}.get(where)
        if flags is None:
            raise RuleError('flood where must be ack, syn or data')
        caddr = rule.address or ip_bytes(CLIENTS4[0] if fam == 4 else CLIENTS6[0])
        vip = ip_bytes('198.51.100.10' if fam == 4 else '2001:db8:a::10')
        payload = bytes.fromhex(m.get('payloadHex', '')) if where == 'data' else b''
        if where == 'data' and not payload:
            payload = b'GET / HTTP/1.1\r\n\r\n'
        sports = m.get('sports') or [1024, 65535]
        if not (isinstance(sports, list) and len(sports) == 2 and 1 <= sports[0] <= sports[1] <= 0xFFFF):
            raise RuleError('flood sports must be [min, max] within 1..65535')
        n = 0
        for _ in range(count):
            sp = random.randint(sports[0], sports[1])
            cport = random.randint(1024, 65535)
            toa = rule.build(caddr, cport, vip, port)
            if toa is None:
                raise RuleError('rule builds no option for this family')
            opts = self.add_option(b'', toa, rule.alone) or b''
            hdr = struct.pack('!HHIIBBHHH', sp, port, random.getrandbits(32),
                              random.getrandbits(32) if flags & ACK else 0,
                              ((20 + len(opts)) // 4) << 4, flags, 502, 0, 0)
            seg = bytearray(hdr + opts + payload)
            out = build_ip(lip, rip, seg)
            self.emit(out, 'inj')
            n += 1
            if n % 128 == 0:
                self.drain_tun()   # keep real connections (and the answers) flowing
        self.stats['flood_sent'] += n
        return {'sent': n, 'lip': ip_str(lip), 'rip': ip_str(rip)}

    def op_craft(self, m):
        src, dst = ip_bytes(m['src']), ip_bytes(m['dst'])
        if len(src) != len(dst):
            raise RuleError('src and dst families differ')
        fl = m.get('flags', 'A')
        if isinstance(fl, str):
            fl = sum(b for ch, b in (('S', SYN), ('A', ACK), ('P', PSH), ('F', FIN), ('R', RST))
                     if ch in fl)
        opts = bytes.fromhex(m.get('optionsHex', ''))
        if len(opts) % 4:
            opts += b'\0' * (4 - len(opts) % 4)
        payload = bytes.fromhex(m.get('payloadHex', ''))
        seg = bytearray(struct.pack('!HHIIBBHHH', int(m['sport']), int(m['dport']),
                                    int(m.get('seq', random.getrandbits(32))) & 0xFFFFFFFF,
                                    int(m.get('ack', 0)) & 0xFFFFFFFF,
                                    ((20 + len(opts)) // 4) << 4, fl, int(m.get('window', 64240)),
                                    0, 0) + opts + payload)
        out = build_ip(src, dst, seg, ttl=int(m.get('ttl', 64)))
        self.emit(out, 'inj')
        return {'hex': out.hex()}

    def op_raw(self, m):
        pkt = bytearray(bytes.fromhex(m['hex']))
        if m.get('fix', False):
            p = parse_ip(pkt)
            if p is None:
                raise RuleError('fix: not a TCP packet')
            src, dst, seg, tos, ttl = p
            pkt = bytearray(build_ip(src, dst, seg, tos, ttl))
        self.emit(bytes(pkt), 'inj')
        return {'len': len(pkt)}

    def handle_cmd(self, m):
        op = m.get('op')
        if op == 'ping':
            return {'pong': True}
        if op == 'rule':
            client = m.get('client', 'default')
            r = m.get('rule')
            if client in ('default', '*', None):
                self.default_rule = Rule(r if r is not None else {})
            elif r is None:
                self.rules.pop(ip_bytes(client), None)
            else:
                self.rules[ip_bytes(client)] = Rule(r)
            return {}
        if op == 'config':
            if 'verifyIn' in m:
                self.verify_in = bool(m['verifyIn'])
            return {'verifyIn': self.verify_in, 'mssClamp': self.mss_clamp}
        if op == 'clear':
            self.rules.clear()
            self.default_rule = Rule({})
            return {}
        if op == 'stats':
            s = dict(self.stats)
            for k in ('packets_in', 'packets_out', 'connections', 'toa_inserted', 'toa_too_big'):
                s.setdefault(k, 0)
            s['active'] = len(self.c2s)
            if m.get('reset'):
                self.stats.clear()
            return {'stats': s}
        if op == 'packets':
            lim = int(m.get('limit', RING))
            want = m.get('dir')
            ring = self.ring_in if want == 'in' else self.ring
            sel = [x for x in ring if want is None or x[1] == want]
            sel = sel[-lim:] if lim else []
            res = [self.describe(*x) for x in sel]
            if m.get('clear'):
                self.ring.clear()
                self.ring_in.clear()
            return {'packets': res}
        if op == 'conns':
            return {'conns': [self.conn_info(c) for c in self.c2s.values()]}
        if op == 'flood':
            return self.op_flood(m)
        if op == 'raw':
            return self.op_raw(m)
        if op == 'craft':
            return self.op_craft(m)
        if op == 'quit':
            raise SystemExit(0)
        raise RuleError('unknown op %r' % (op,))

    def reply(self, obj):
        try:
            sys.stdout.write(json.dumps(obj, separators=(',', ':')) + '\n')
            sys.stdout.flush()
        except BrokenPipeError:   # the harness is gone: clean up and leave
            raise SystemExit(0)

    def on_stdin(self):
        data = os.read(0, 65536)
        if not data:
            raise SystemExit(0)
        self.stdin_buf += data
        while b'\n' in self.stdin_buf:
            line, self.stdin_buf = self.stdin_buf.split(b'\n', 1)
            if not line.strip():
                continue
            mid = None
            try:
                m = json.loads(line)
                mid = m.get('id')
                res = self.handle_cmd(m)
                res['id'] = mid
                res['ok'] = True
                self.reply(res)
            except SystemExit:
                raise
            except Exception as e:  # report, never die on a bad command
                self.reply({'id': mid, 'ok': False, 'error': '%s: %s' % (type(e).__name__, e)})

    def drain_tun(self, limit=512):
        tun = self.tun
        for _ in range(limit):
            try:
                pkt = os.read(tun, 65536)
            except BlockingIOError:
                return
            except InterruptedError:
                continue
            try:
                self.on_packet(pkt)
            except Exception as e:  # a bad packet must not kill the proxy
                self.stats['errors'] += 1
                if self.debug:
                    self.log('packet error: %r' % (e,))

    def run(self):
        poll = select.poll()
        poll.register(self.tun, select.POLLIN)
        poll.register(0, select.POLLIN | select.POLLHUP)
        self.reply({'ready': True, 'dev': self.dev, 'pid': os.getpid()})
        last_sweep = time.monotonic()
        tun = self.tun
        while True:
            for fd, ev in poll.poll(1000):
                if fd == tun:
                    self.drain_tun()
                else:
                    self.on_stdin()
            now = time.monotonic()
            if now - last_sweep >= 1.0:
                last_sweep = now
                self.sweep()


def main():
    args = sys.argv[1:]
    opts = {'dev': 'toa0', 'ns': None, 'setup': True, 'mtu': 1500, 'debug': False}
    i = 0
    while i < len(args):
        a = args[i]
        if a == '--dev':
            opts['dev'] = args[i + 1]
            i += 1
        elif a == '--ns':
            opts['ns'] = args[i + 1]
            i += 1
        elif a == '--mtu':
            opts['mtu'] = int(args[i + 1])
            i += 1
        elif a == '--no-setup':
            opts['setup'] = False
        elif a == '--debug':
            opts['debug'] = True
        else:
            sys.stderr.write('unknown argument %s\n' % a)
            sys.exit(2)
        i += 1
    ns = opts['ns']

    def cleanup():
        if ns:
            # The namespace is ours: remove it when the harness goes away, even
            # if the harness process was killed before it could do it.
            subprocess.run(['ip', 'netns', 'delete', ns], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)

    def on_term(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    try:
        proxy = Proxy(opts['dev'], ns, opts['setup'], opts['mtu'], opts['debug'])
    except Exception as e:
        sys.stdout.write(json.dumps({'ready': False, 'error': '%s: %s' % (type(e).__name__, e)}) + '\n')
        sys.stdout.flush()
        cleanup()
        sys.exit(1)
    try:
        proxy.run()
    except (SystemExit, KeyboardInterrupt):
        pass
    finally:
        try:
            os.close(proxy.tun)
        except OSError:
            pass
        cleanup()


if __name__ == '__main__':
    main()
