// `node-toa/fastify`: the entry point; the integration is lib/frameworks/fastify.ts.
// Node's types come with this entry point (see index.ts).
/// <reference types="node" preserve="true" />
import { fastifyToa } from './frameworks/fastify';

export * from './frameworks/fastify';
export default fastifyToa;

// CommonJS: require('node-toa/fastify') is the plugin itself, as with every Fastify plugin, and still has .default and .fastifyToa.
module.exports = Object.assign(fastifyToa, exports);
