// Compiled by test/build/types.test.ts with tsc --noEmit; never run. The augmentation of Koa's context
// comes from importing node-toa/koa (lib/koa.ts).
import Koa from 'koa';
import toaKoa, { toaKoa as named, toaMiddleware } from '../../../lib/koa';
import type { RealAddress } from '../../../lib/index';

const app = new Koa();
app.use(toaKoa({ trustProxy: ['10.0.0.0/8'], setIp: true }));
app.use(named());
app.use(toaMiddleware());

app.use(async (ctx, next) => {
  const real: RealAddress = ctx.realRemoteAddress();
  ctx.body = { address: real.address, family: real.family, ip: ctx.ip };
  await next();
});

app.use((ctx) => {
  // @ts-expect-error the family is 'IPv4' | 'IPv6'
  const f: 'IPv5' = ctx.realRemoteAddress().family;
  // @ts-expect-error realRemoteAddress() takes no options
  ctx.realRemoteAddress({});
  return f;
});

// @ts-expect-error an unknown option
toaKoa({ setip: true });
