// An ES module WebSocket server (ws, which makes its own HTTP server). Start it with --import:
//   NODE_TOA_TRUST_PROXY=198.51.100.0/24 node --import node-toa/preload ws.mjs
import { WebSocketServer } from 'ws';

const wss = new WebSocketServer({ port: Number(process.env.PORT || 8080), host: process.env.HOST });
wss.on('connection', (ws, req) => {
  const { remoteAddress, remotePort, remoteFamily } = req.socket;
  console.log(`websocket from ${remoteAddress}:${remotePort}`);
  ws.send(JSON.stringify({ remoteAddress, remotePort, remoteFamily }));
});
wss.on('listening', () => {
  const { address, port } = wss.address();
  console.log(`listening on ${address}:${port}`);
});
