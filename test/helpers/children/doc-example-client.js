// node doc-example-client.js KIND ADDRESS PORT: one request to a documented example server, run
// inside that example's network namespace (nsenter); prints the answer's text on stdout.
//   http            GET / over HTTP/1.1
//   proxy-protocol  a PROXY v1 header naming CLIENT, then GET /
//   spp             one UDP datagram with an SPP header naming CLIENT; prints the reply's payload
//                   after the reply's own SPP header (replies must carry one)
// Retries while the example is still starting (refused, no answer), for at most 15 s.
'use strict';
const dgram = require('node:dgram');
const http = require('node:http');
const net = require('node:net');

const [kind, address, portText] = process.argv.slice(2);
const port = Number(portText);
/** The client the proxy header names: not the peer, so an answer naming it was read from the header. */
const CLIENT = { address: '192.0.2.1', port: 51234 };
const deadline = Date.now() + 15000;

function httpGet() {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: address, port, path: '/', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(`${res.statusCode} ${body}`));
    });
    req.on('error', reject);
  });
}

function proxyGet() {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, address, () => {
      socket.write(`PROXY TCP4 ${CLIENT.address} ${address} ${CLIENT.port} ${port}\r\nGET / HTTP/1.0\r\nHost: example\r\n\r\n`);
    });
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (d) => (text += d));
    socket.on('end', () => {
      const [head, ...body] = text.split('\r\n\r\n');
      resolve(`${head.split(' ')[1]} ${body.join('\r\n\r\n')}`);
    });
    socket.on('error', reject);
  });
}

/** Magic 0x56EC, client and proxy as (IPv4-mapped) IPv6, client port, proxy port: 38 bytes. */
function sppHeader(client, proxy) {
  const mapped = (ip) => Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...ip.split('.').map(Number)]);
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(client.port, 0);
  ports.writeUInt16BE(proxy.port, 2);
  return Buffer.concat([Buffer.from([0x56, 0xec]), mapped(client.address), mapped(proxy.address), ports]);
}

function sppRequest() {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    let timer;
    socket.on('error', (e) => {
      clearInterval(timer);
      socket.close();
      reject(e);
    });
    socket.on('message', (msg) => {
      clearInterval(timer);
      socket.close();
      const magic = msg.length >= 38 && msg[0] === 0x56 && msg[1] === 0xec;
      resolve(magic ? `spp ${msg.subarray(38).toString('utf8')}` : `no-spp-header ${msg.toString('utf8')}`);
    });
    socket.bind(0, address, () => {
      const datagram = Buffer.concat([sppHeader(CLIENT, { address, port: socket.address().port }), Buffer.from('hi')]);
      const send = () => {
        if (Date.now() > deadline) {
          clearInterval(timer);
          socket.close();
          reject(new Error('no reply'));
          return;
        }
        socket.send(datagram, port, address);
      };
      timer = setInterval(send, 200);
      send();
    });
  });
}

const request = { http: httpGet, 'proxy-protocol': proxyGet, spp: sppRequest }[kind];
if (!request) {
  console.error(`unknown kind ${kind}`);
  process.exit(2);
}

(async () => {
  for (;;) {
    try {
      process.stdout.write(await request());
      return;
    } catch (e) {
      if (Date.now() > deadline) {
        console.error(`${kind} ${address}:${port}: ${e.message}`);
        process.exit(1);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
})();
