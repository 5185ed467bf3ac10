// Compiled by test/build/types.test.ts with tsc --noEmit; never run. The augmentation of Express's
// Request comes from importing node-toa/express (lib/express.ts).
import express from 'express';
import toaDefault, { toaMiddleware, type ToaMiddlewareOptions } from '../../../lib/express';
import type { RealAddress } from '../../../lib/index';

const app = express();
app.use(toaMiddleware());
app.use(toaDefault({ trustProxy: ['10.0.0.0/8'], kinds: [200, { kind: 230, layout: 'ipv4' }], setIp: true }));

app.get('/', (req, res) => {
  const real: RealAddress = req.realRemoteAddress();
  const address: string = real.address;
  const source: 'toa' | 'kernel' | 'proxy-protocol' | 'peer' = real.source;
  const proxy: string | undefined = real.proxy?.address;
  res.send({ address, source, proxy, ip: req.ip });
});

const options: ToaMiddlewareOptions = { setIp: false };
toaMiddleware(options);

app.get('/misuse', (req) => {
  // @ts-expect-error realRemoteAddress() takes no options: they are the middleware's
  req.realRemoteAddress({ trustProxy: true });
  // @ts-expect-error the address is a string
  const n: number = req.realRemoteAddress().address;
  // @ts-expect-error 'other' is not a source
  const s: 'other' = req.realRemoteAddress().source;
  return [n, s];
});

// @ts-expect-error an unknown option
toaMiddleware({ trustproxy: true });
// @ts-expect-error setIp is a boolean
toaMiddleware({ setIp: 'yes' });
