#!/usr/bin/env python3
"""A bounded SYN flood from a spoofed source, for flood.test.ts (python3 stdlib only).

Run it inside a network namespace the test made (`ip netns exec NS python3 syn-flood.py ...`):
it sends IPv4 SYNs from --src (an address that is not local, whose SYN-ACKs the test routes
into a device where they vanish) to --dst:--dport through a raw socket (IPPROTO_RAW, so
IP_HDRINCL), from random source ports and sequence numbers. Each SYN carries an MSS option and,
unless --no-toa, a TOA (kind 254, len 8, a fake client 192.0.2.99): an untrusted sender's
TOA-carrying SYNs are exactly what a tap filter must keep out of user space.

Bounded: at most --count packets and --seconds seconds; SIGTERM/SIGINT stop it early. Prints one
JSON line at the end: {"sent": N, "seconds": S}. Prints {"ready": true} once the packets are
built and the socket is open.
"""

import array
import ipaddress
import json
import random
import signal
import socket
import struct
import sys
import time


def checksum(data):
    if len(data) & 1:
        data += b'\0'
    s = sum(array.array('H', data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def syn(src, dst, sport, dport, seq, toa):
    # MSS 1460; TOA kind 254 len 8: port 4242, 192.0.2.99.
    opts = struct.pack('!BBH', 2, 4, 1460)
    if toa:
        opts += struct.pack('!BBH4s', 254, 8, 4242, ipaddress.ip_address('192.0.2.99').packed)
    doff = (20 + len(opts)) // 4
    tcp = bytearray(struct.pack('!HHIIBBHHH', sport, dport, seq, 0, doff << 4, 0x02, 64240, 0, 0) + opts)
    pseudo = src + dst + struct.pack('!BBH', 0, 6, len(tcp))
    struct.pack_into('=H', tcp, 16, checksum(pseudo + bytes(tcp)))
    # IP id 0 and checksum 0: the kernel fills both for IP_HDRINCL.
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, src, dst)
    return ip + bytes(tcp)


def main():
    args = sys.argv[1:]
    o = {'src': '203.0.113.66', 'dst': None, 'dport': None, 'count': 10_000_000, 'seconds': 30.0,
         'toa': True, 'distinct': 16384}
    i = 0
    while i < len(args):
        a = args[i]
        if a == '--no-toa':
            o['toa'] = False
            i += 1
            continue
        key = {'--src': 'src', '--dst': 'dst', '--dport': 'dport', '--count': 'count',
               '--seconds': 'seconds', '--distinct': 'distinct'}.get(a)
        if key is None or i + 1 >= len(args):
            sys.stderr.write('syn-flood: bad argument %s\n' % a)
            sys.exit(2)
        o[key] = args[i + 1] if key in ('src', 'dst') else float(args[i + 1]) if key == 'seconds' else int(args[i + 1])
        i += 2
    if o['dst'] is None or o['dport'] is None:
        sys.stderr.write('syn-flood: --dst and --dport are required\n')
        sys.exit(2)
    src = ipaddress.IPv4Address(o['src']).packed
    dst = ipaddress.IPv4Address(o['dst']).packed
    rnd = random.Random()
    packets = [syn(src, dst, rnd.randint(1024, 65535), o['dport'], rnd.getrandbits(32), o['toa'])
               for _ in range(o['distinct'])]
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    stop = [False]

    def on_signal(signum, frame):
        stop[0] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sys.stdout.write(json.dumps({'ready': True}) + '\n')
    sys.stdout.flush()
    t0 = time.monotonic()
    deadline = t0 + o['seconds']
    sent = 0
    errors = 0
    target = (o['dst'], 0)
    n = len(packets)
    count = o['count']
    while sent < count and not stop[0]:
        for k in range(min(1024, count - sent)):
            try:
                s.sendto(packets[(sent + k) % n], target)
            except OSError:
                errors += 1   # ENOBUFS under load: keep going
        sent += min(1024, count - sent)
        if time.monotonic() >= deadline:
            break
    sys.stdout.write(json.dumps({'sent': sent - errors, 'errors': errors,
                                 'seconds': round(time.monotonic() - t0, 3)}) + '\n')
    sys.stdout.flush()


if __name__ == '__main__':
    main()
