// `node-toa/express`: the entry point; the integration is lib/frameworks/express.ts.
import { toaMiddleware } from './frameworks/express';

export * from './frameworks/express';
export default toaMiddleware;

// CommonJS: require('node-toa/express') is the factory itself, and still has .default and .toaMiddleware.
module.exports = Object.assign(toaMiddleware, exports);
