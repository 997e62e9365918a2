#!/usr/bin/env node
'use strict';
// Runs the three test layers (unit, wire, system) from dist/ with uvu, each file in its own
// process so a crashed file cannot hide the others, and ends with "N passed, N failed".
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..', 'dist', 'test');
const layers = (process.argv[2] ? process.argv.slice(2) : ['unit', 'wire', 'system']);
let passed = 0, failed = 0, skipped = 0;
const failures = [];
for (const layer of layers) {
  const dir = path.join(root, layer);
  if (!fs.existsSync(dir)) continue;
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.test.js')).sort();
  for (const f of files) {
    const started = Date.now();
    const r = spawnSync(process.execPath, [path.join(dir, f)], { encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0' }, timeout: 300_000 });
    const out = (r.stdout || '') + (r.stderr || '');
    const num = (label) => { const m = out.match(new RegExp(label + ':\\s+(\\d+)')); return m ? Number(m[1]) : 0; };
    const total = num('Total'), ok = num('Passed'), skip = num('Skipped');
    let bad = total - ok - skip;
    if (r.status !== 0 && bad === 0) bad = 1;
    passed += ok; failed += bad; skipped += skip;
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    process.stdout.write(`${bad ? 'FAIL' : 'ok  '} ${layer}/${f} (${ok} passed${bad ? `, ${bad} failed` : ''}, ${secs}s)\n`);
    if (bad) { failures.push(`${layer}/${f}`); process.stdout.write(out.split('\n').map((l) => '    ' + l).join('\n') + '\n'); }
  }
}
if (failures.length) process.stdout.write(`failed files: ${failures.join(', ')}\n`);
process.stdout.write(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
process.exit(failed ? 1 : 0);
