// Helpers the examples share: argument parsing, router URLs, error text.

/** Error text from an AMQP error (condition: description). */
function describe(error) {
  if (!error) return 'no reason given';
  return [error.condition, error.description].filter(Boolean).join(': ') || String(error);
}

/** "5672", "host:port" or a URL → amqp://... */
function toUrl(s) {
  if (/^\d+$/.test(s)) return `amqp://127.0.0.1:${s}`;
  return s.includes('://') ? s : `amqp://${s}`;
}

/**
 * `--key value` options for every key of `defaults` (numbers must be whole), the rest are router
 * URLs (in `urls`). `--help` prints `usageLine`; a bad option exits 2 naming `name`.
 */
function parseArgs(name, usageLine, argv, defaults) {
  const usage = (why) => {
    console.error(`${name}: ${why}`);
    process.exit(2);
  };
  const o = { ...defaults, urls: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const key = a.startsWith('--') ? a.slice(2) : null;
    if (key === 'help' || a === '-h') {
      console.log(usageLine);
      process.exit(0);
    }
    if (key === null) o.urls.push(toUrl(a));
    else if (!(key in defaults) || argv[i + 1] === undefined) usage(`unknown option or missing value: ${a}`);
    else if (typeof defaults[key] === 'number') {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || (v < 0 && defaults[key] >= 0)) usage(`${a} needs a whole number`);
      o[key] = v;
    } else o[key] = argv[++i];
  }
  return o;
}

/** device-0042: the name of device 42 of N (devices.js sends as it, service.js checks for it). */
function deviceName(i, n) {
  return `device-${String(i).padStart(Math.max(4, String(n - 1).length), '0')}`;
}

module.exports = { describe, toUrl, parseArgs, deviceName };
