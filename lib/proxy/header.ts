// The PROXY protocol lives in proxy-protocol/ ("proxy" is the L3 peer). This re-export is kept only
// until resolve/facts.ts imports ../proxy-protocol/header; then this folder goes.
export { headerInfo, headerOf } from '../proxy-protocol/header';
