// An ordinary Koa app that logs ctx.ip. Start it with the preload:
//   NODE_TOA_TRUST_PROXY=198.51.100.0/24 node -r node-toa/preload koa.js
'use strict';
const Koa = require('koa');

const app = new Koa();
app.use(async (ctx, next) => {
  await next();
  console.log(`${ctx.ip} ${ctx.method} ${ctx.url} ${ctx.status}`);
});
app.use((ctx) => {
  const { remoteAddress, remotePort, remoteFamily } = ctx.req.socket;
  ctx.body = { ip: ctx.ip, remoteAddress, remotePort, remoteFamily };
});

const server = app.listen(Number(process.env.PORT || 3000), process.env.HOST, () => {
  const { address, port } = server.address();
  console.log(`listening on ${address}:${port}`);
});
