// `node-toa/koa`: the entry point; the integration is lib/frameworks/koa.ts.
// Node's types come with this entry point (see index.ts).
/// <reference types="node" preserve="true" />
import { toaKoa } from './frameworks/koa';

export * from './frameworks/koa';
export default toaKoa;

// CommonJS: require('node-toa/koa') is the factory itself, and still has .default, .toaKoa and .toaMiddleware.
module.exports = Object.assign(toaKoa, exports);
