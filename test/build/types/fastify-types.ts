// Compiled by test/build/types.test.ts with tsc --noEmit; never run. The augmentation of
// FastifyRequest comes from importing node-toa/fastify (lib/fastify.ts).
import Fastify from 'fastify';
import fastifyToa, { fastifyToa as named, type FastifyToaOptions } from '../../../lib/fastify';
import type { RealAddress } from '../../../lib/index';

async function main(): Promise<void> {
  const app = Fastify();
  await app.register(fastifyToa, { trustProxy: '10.0.0.0/8', setIp: true });
  await app.register(named);
  const options: FastifyToaOptions = { kinds: [254] };
  await app.register(fastifyToa, options);

  app.get('/', async (request) => {
    const real: RealAddress = request.realRemoteAddress();
    const port: number = real.port;
    return { address: real.address, port, ip: request.ip };
  });

  app.get('/misuse', async (request) => {
    // @ts-expect-error the port is a number
    const p: string = request.realRemoteAddress().port;
    // @ts-expect-error there is no realRemoteAddress on the reply
    app.get('/x', async (_req, reply) => reply.realRemoteAddress());
    return p;
  });

  // @ts-expect-error setIp is a boolean
  await app.register(fastifyToa, { setIp: 1 });
  // @ts-expect-error trustProxy is not a number
  await app.register(fastifyToa, { trustProxy: 3 });
}

void main;
