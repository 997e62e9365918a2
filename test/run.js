#!/usr/bin/env node
'use strict';
// Runs the three test layers (unit, wire, system) from dist/ with uvu, each file in its own
// process so a crashed file cannot hide the others, and ends with "N passed, N failed".
//
// Files run TEST_JOBS at a time (default 2, this machine's cores), except those marked
// `// @runs-alone: <why>` near their top: they assert on timing (a takeover, a deadline, a pause)
// or load the machine, so they run after the others, one by one, with nothing beside them.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..', 'dist', 'test');
const layers = (process.argv[2] ? process.argv.slice(2) : ['unit', 'wire', 'system']);
const jobs = Math.max(1, Number(process.env.TEST_JOBS) || 2);
const TIMEOUT_MS = 300_000;

const files = [];
for (const layer of layers) {
  const dir = path.join(root, layer);
  if (!fs.existsSync(dir)) continue;
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.test.js')).sort()) {
    const file = path.join(dir, f);
    const head = fs.readFileSync(file, 'utf8').slice(0, 8192);
    files.push({ name: `${layer}/${f}`, file, alone: /^\s*\/\/ @runs-alone:/m.test(head) });
  }
}

let passed = 0, failed = 0, skipped = 0;
const failures = [];

/** Runs one file; resolves once it is counted and reported. */
function run({ name, file }) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, [file], { env: { ...process.env, FORCE_COLOR: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    const timer = setTimeout(() => { out += `\n(killed after ${TIMEOUT_MS / 1000} s)\n`; child.kill('SIGKILL'); }, TIMEOUT_MS);
    child.on('close', (status) => {
      clearTimeout(timer);
      const num = (label) => { const m = out.match(new RegExp(label + ':\\s+(\\d+)')); return m ? Number(m[1]) : 0; };
      const total = num('Total'), ok = num('Passed'), skip = num('Skipped');
      let bad = total - ok - skip;
      if (status !== 0 && bad === 0) bad = 1;
      passed += ok; failed += bad; skipped += skip;
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      process.stdout.write(`${bad ? 'FAIL' : 'ok  '} ${name} (${ok} passed${bad ? `, ${bad} failed` : ''}, ${secs}s)\n`);
      if (bad) { failures.push(name); process.stdout.write(out.split('\n').map((l) => '    ' + l).join('\n') + '\n'); }
      resolve();
    });
  });
}

/** Runs `list` with at most `width` files at once, in order. */
async function pool(list, width) {
  let next = 0;
  const lane = async () => { while (next < list.length) await run(list[next++]); };
  await Promise.all(Array.from({ length: Math.min(width, list.length) }, lane));
}

(async () => {
  const started = Date.now();
  await pool(files.filter((f) => !f.alone), jobs);
  await pool(files.filter((f) => f.alone), 1);
  if (failures.length) process.stdout.write(`failed files: ${failures.join(', ')}\n`);
  process.stdout.write(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''} (${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
  process.exit(failed ? 1 : 0);
})();
