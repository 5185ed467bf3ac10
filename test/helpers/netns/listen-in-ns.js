// Run by the netns agent (ToaNet.listenWith) inside the test's network namespace: a plain
// net.Server started with toa.listen(), whose listening socket the agent then hands to jest.
'use strict';
const net = require('node:net');
const toa = require('node-toa');

exports.toaListen = (options) => toa.listen(net.createServer(), options);
