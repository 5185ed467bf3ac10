// An ordinary Express app: morgan's access log and express-rate-limit, `trust proxy` off. Nothing
// here knows node-toa; start it with the preload and the client's address is everywhere:
//   NODE_TOA_TRUST_PROXY=198.51.100.0/24 node -r node-toa/preload express.js
'use strict';
const express = require('express');
const morgan = require('morgan');
const { rateLimit } = require('express-rate-limit');

const app = express();
app.use(morgan(':remote-addr :method :url :status'));
app.use(rateLimit({ windowMs: 60_000, limit: Number(process.env.RATE_LIMIT || 100), standardHeaders: 'draft-6', legacyHeaders: false }));
app.get('/', (req, res) => {
  const { remoteAddress, remotePort, remoteFamily } = req.socket;
  res.json({ ip: req.ip, remoteAddress, remotePort, remoteFamily });
});

const server = app.listen(Number(process.env.PORT || 3000), process.env.HOST, () => {
  const { address, port } = server.address();
  console.log(`listening on ${address}:${port}`);
});
