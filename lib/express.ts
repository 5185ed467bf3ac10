// `node-toa/express`: the entry point; the integration is lib/frameworks/express.ts.
// Node's types come with this entry point (see index.ts).
/// <reference types="node" preserve="true" />
import { toaMiddleware } from './frameworks/express';

export * from './frameworks/express';
export default toaMiddleware;

// CommonJS: require('node-toa/express') is the factory itself, and still has .default and .toaMiddleware.
module.exports = Object.assign(toaMiddleware, exports);
