// A loopback client on a worker thread, so that it can write while the test's own thread is
// blocked: the server (on the blocked thread) accepts the connection only after `first` is in its
// receive queue. Then `later` (on the message 'later'), a half-close, and everything the server
// sends back is posted as { data } once it closes. Bounded by timeoutMs.
//
// workerData: { port, first: Uint8Array, later: Uint8Array, flag: Int32Array on a SharedArrayBuffer }
'use strict';
const net = require('node:net');
const { parentPort, workerData } = require('node:worker_threads');

const { port, first, later, flag, timeoutMs = 5000 } = workerData;
const socket = net.connect(port, '127.0.0.1');
socket.setNoDelay(true);
const chunks = [];
let posted = false;
const post = (closed) => {
  if (posted) return;
  posted = true;
  clearTimeout(timer);
  parentPort.postMessage({ data: Buffer.concat(chunks), closed });
  socket.destroy();
};
const timer = setTimeout(() => post(false), timeoutMs);
const written = () => {
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
};
socket.on('connect', () => {
  if (first.length === 0) written();
  else socket.write(first, written);
});
socket.on('data', (d) => chunks.push(d));
socket.on('close', () => post(true));
socket.on('error', () => post(true));
parentPort.on('message', () => {
  if (socket.destroyed) return;
  if (later.length > 0) socket.write(later);
  socket.end();
});
