'use strict';
// Runs INSIDE the test network namespace (spawned by toa-net.ts as
// `ip netns exec NS node netns-agent.js` with an IPC channel; `ip netns exec`
// execs in place, so the IPC fd and NODE_CHANNEL_FD survive).
//
// Commands arrive as IPC messages {id, cmd, ...}; answers are {id, ok, ...}.
//   listen     {host, port, ipv6Only, backlog}  -> listening TCP handle sent to the parent
//   listenWith {module, fn, args}               -> require(module)[fn](...args) must give a
//                                                  listening net.Server; its handle is sent
//   request    {protocol, vip, port, ...}       -> runs a real client from inside the namespace
//   ping
// The agent exits when the IPC channel closes (parent gone).

const net = require('net');
const http = require('http');
const https = require('https');
const http2 = require('http2');
const tls = require('tls');

if (typeof process.send !== 'function') {
  console.error('netns-agent: no IPC channel');
  process.exit(2);
}

process.on('disconnect', () => process.exit(0));
process.on('uncaughtException', (err) => {
  try {
    process.send({ id: null, ok: false, fatal: true, error: String((err && err.stack) || err) });
  } catch (_) {
    /* ignore */
  }
});

function reply(msg, handle) {
  return new Promise((resolve) => {
    try {
      if (handle) process.send(msg, handle, {}, () => resolve());
      else process.send(msg, undefined, {}, () => resolve());
    } catch (err) {
      resolve();
    }
  });
}

function errInfo(err) {
  return { error: (err && err.message) || String(err), code: err && err.code };
}

// Send the listening handle of `server` to the parent, then close our copy
// (otherwise the agent would keep accepting connections on the same socket).
async function sendServer(id, server) {
  const addr = server.address();
  const handle = server._handle;
  if (!handle) throw new Error('server has no handle');
  await reply({ id, ok: true, address: addr.address, family: addr.family, port: addr.port }, handle);
  server.close();
}

function isV6(a) {
  return net.isIPv6(a);
}

function hostForUrl(h) {
  return isV6(h) ? `[${h}]` : h;
}

function defaultLocal(vip) {
  return isV6(vip) ? '2001:db8:c::1' : '192.0.2.1';
}

function withTimeout(ms, label, fn) {
  return new Promise((resolve, reject) => {
    const cleanups = [];
    let done = false;
    const t = setTimeout(() => {
      if (done) return;
      done = true;
      for (const c of cleanups) {
        try {
          c();
        } catch (_) {
          /* ignore */
        }
      }
      const e = new Error(`${label}: timeout after ${ms} ms`);
      e.code = 'ETIMEDOUT';
      reject(e);
    }, ms);
    const onCleanup = (c) => cleanups.push(c);
    Promise.resolve()
      .then(() => fn(onCleanup))
      .then(
        (v) => {
          if (done) return;
          done = true;
          clearTimeout(t);
          resolve(v);
        },
        (e) => {
          if (done) return;
          done = true;
          clearTimeout(t);
          for (const c of cleanups) {
            try {
              c();
            } catch (_) {
              /* ignore */
            }
          }
          reject(e);
        },
      );
  });
}

// TLS: verify against `ca` when given, otherwise (or with insecure) accept any certificate.
function tlsOpts(o) {
  const r = { rejectUnauthorized: !!o.ca && !o.insecure };
  if (o.ca) r.ca = o.ca;
  if (o.servername) r.servername = o.servername;
  return r;
}

// One HTTP/1.1 or HTTPS connection carrying `count` requests (keep-alive agent,
// maxSockets 1), or `count` separate connections when keepAlive is false.
async function httpConn(o, onCleanup) {
  const mod = o.protocol === 'https' ? https : http;
  const AgentCls = o.protocol === 'https' ? https.Agent : http.Agent;
  const agent = new AgentCls({ keepAlive: o.keepAlive !== false, maxSockets: 1, ...(o.protocol === 'https' ? tlsOpts(o) : {}) });
  onCleanup(() => agent.destroy());
  const responses = [];
  let first = null;
  try {
    for (let i = 0; i < o.count; i++) {
      const r = await new Promise((resolve, reject) => {
        const headers = Object.assign({}, o.headers || {});
        if (o.keepAlive === false) headers.connection = 'close';
        const req = mod.request({
          host: o.vip,
          port: o.port,
          localAddress: o.localAddress,
          family: isV6(o.vip) ? 6 : 4,
          path: o.path || '/',
          method: o.method || (o.body != null ? 'POST' : 'GET'),
          headers,
          agent,
          ...(o.protocol === 'https' ? tlsOpts(o) : {}),
        });
        let sockInfo = null;
        req.on('socket', (s) => {
          const grab = () => {
            sockInfo = { localAddress: s.localAddress, localPort: s.localPort };
          };
          if (s.localPort) grab();
          else s.once('connect', grab);
        });
        req.on('error', reject);
        req.on('response', (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const s = req.socket;
            if (!sockInfo && s) sockInfo = { localAddress: s.localAddress, localPort: s.localPort };
            resolve({
              status: res.statusCode,
              headers: res.headers,
              body: Buffer.concat(chunks).toString('utf8'),
              localAddress: sockInfo && sockInfo.localAddress,
              localPort: sockInfo && sockInfo.localPort,
            });
          });
        });
        if (o.body != null) req.end(o.body);
        else req.end();
      });
      if (!first) first = r;
      responses.push(r);
    }
  } finally {
    agent.destroy();
  }
  return { localAddress: first && first.localAddress, localPort: first && first.localPort, responses };
}

async function h2Conn(o, onCleanup) {
  const secure = o.protocol === 'h2';
  const authority = `${secure ? 'https' : 'http'}://${hostForUrl(o.vip)}:${o.port}`;
  const session = http2.connect(authority, {
    createConnection: () =>
      secure
        ? tls.connect({ host: o.vip, port: o.port, localAddress: o.localAddress, ALPNProtocols: ['h2'], ...tlsOpts(o) })
        : net.connect({ host: o.vip, port: o.port, localAddress: o.localAddress }),
  });
  onCleanup(() => session.destroy());
  let sessErr = null;
  session.on('error', (e) => {
    sessErr = e;
  });
  await new Promise((resolve, reject) => {
    session.once('connect', resolve);
    session.once('error', reject);
  });
  const localAddress = session.socket.localAddress;
  const localPort = session.socket.localPort;
  const responses = [];
  try {
    for (let i = 0; i < o.count; i++) {
      if (sessErr) throw sessErr;
      const r = await new Promise((resolve, reject) => {
        const headers = Object.assign(
          { ':path': o.path || '/', ':method': o.method || (o.body != null ? 'POST' : 'GET') },
          o.headers || {},
        );
        const st = session.request(headers, { endStream: o.body == null });
        let status = 0;
        let resHeaders = {};
        const chunks = [];
        st.on('response', (h) => {
          status = h[':status'];
          resHeaders = h;
        });
        st.on('data', (c) => chunks.push(c));
        st.on('end', () => resolve({ status, headers: resHeaders, body: Buffer.concat(chunks).toString('utf8'), localAddress, localPort }));
        st.on('error', reject);
        if (o.body != null) st.end(o.body);
      });
      responses.push(r);
    }
  } finally {
    await new Promise((resolve) => session.close(resolve));
  }
  return { localAddress, localPort, responses };
}

// Raw TCP: connect, write `body` (default "hello\n"), read until the server ends.
async function tcpConn(o, onCleanup) {
  const sock = net.connect({ host: o.vip, port: o.port, localAddress: o.localAddress });
  onCleanup(() => sock.destroy());
  return new Promise((resolve, reject) => {
    const chunks = [];
    let info = null;
    sock.on('connect', () => {
      info = { localAddress: sock.localAddress, localPort: sock.localPort };
      sock.write(o.body != null ? o.body : 'hello\n');
      if (o.halfClose) sock.end();
    });
    sock.on('data', (c) => chunks.push(c));
    sock.on('error', reject);
    sock.on('end', () => {
      sock.end();
      const body = Buffer.concat(chunks).toString('utf8');
      resolve({ ...info, responses: [{ status: 0, body, localAddress: info.localAddress, localPort: info.localPort }] });
    });
  });
}

async function doRequest(m) {
  const o = Object.assign({ protocol: 'http', count: 1, keepAlive: true, timeoutMs: 5000, connections: 1 }, m);
  if (!o.vip || !o.port) throw new Error('request needs vip and port');
  if (!o.localAddress) o.localAddress = defaultLocal(o.vip);
  const fn = { http: httpConn, https: httpConn, h2: h2Conn, h2c: h2Conn, tcp: tcpConn }[o.protocol];
  if (!fn) throw new Error(`unknown protocol ${o.protocol}`);
  const t0 = process.hrtime.bigint();
  return withTimeout(o.timeoutMs, `request ${o.protocol} ${o.vip}:${o.port}`, async (onCleanup) => {
    const conns = [];
    for (let i = 0; i < o.connections; i++) conns.push(await fn(o, onCleanup));
    const first = conns[0];
    const res = {
      localAddress: first.localAddress,
      localPort: first.localPort,
      responses: first.responses,
      elapsedMs: Number(process.hrtime.bigint() - t0) / 1e6,
    };
    if (o.connections > 1) res.connections = conns;
    return res;
  });
}

async function doListen(id, m) {
  const server = net.createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(
      { host: m.host || '::', port: m.port || 0, ipv6Only: !!m.ipv6Only, backlog: m.backlog || 511 },
      resolve,
    );
  });
  await sendServer(id, server);
}

async function doListenWith(id, m) {
  // eslint-disable-next-line global-require, import/no-dynamic-require
  const mod = require(m.module);
  const fn = m.fn ? mod[m.fn] : mod;
  if (typeof fn !== 'function') throw new Error(`${m.module}.${m.fn} is not a function`);
  let server = await fn(...(m.args || []));
  if (server && !(server instanceof net.Server) && server.server instanceof net.Server) server = server.server;
  if (!(server instanceof net.Server)) throw new Error('listenWith: result is not a net.Server');
  if (!server.listening) {
    await new Promise((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
  }
  await sendServer(id, server);
}

process.on('message', async (m) => {
  if (!m || typeof m !== 'object') return;
  const id = m.id;
  try {
    switch (m.cmd) {
      case 'ping':
        await reply({ id, ok: true, pid: process.pid });
        break;
      case 'listen':
        await doListen(id, m);
        break;
      case 'listenWith':
        await doListenWith(id, m);
        break;
      case 'request': {
        const res = await doRequest(m);
        await reply({ id, ok: true, result: res });
        break;
      }
      case 'exit':
        await reply({ id, ok: true });
        process.exit(0);
        break;
      default:
        await reply({ id, ok: false, error: `unknown cmd ${m.cmd}` });
    }
  } catch (err) {
    await reply({ id, ok: false, ...errInfo(err) });
  }
});

process.send({ ready: true, pid: process.pid });
