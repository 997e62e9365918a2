#!/usr/bin/env node
'use strict';
// Compiled by `npm ci` (prepare runs tsc); see docs/decisions/0001-typescript-build.md.
require('../dist/cli/main.js').main(process.argv.slice(2)).catch((e) => {
  process.stderr.write(`amqp-mesh: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
