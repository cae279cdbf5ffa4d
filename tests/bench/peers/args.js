// args.js - the command line of enqueue.js and worker.js: --name value pairs,
// every value a positive integer but --system. Exits 2 on a bad line.
'use strict';

const SYSTEMS = ['bullmq', 'bullmq-roc', 'beequeue'];

function parse(argv, usage, required) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i];
    const val = argv[i + 1];
    if (!key || !key.startsWith('--') || val === undefined) bad(usage, `bad argument ${key}`);
    out[key.slice(2)] = val;
  }
  for (const k of required) {
    if (out[k] === undefined) bad(usage, `--${k} is required`);
    if (k === 'system') {
      if (!SYSTEMS.includes(out[k])) bad(usage, `--system must be one of ${SYSTEMS.join(', ')}`);
    } else if (!/^[1-9][0-9]*$/.test(out[k])) {
      bad(usage, `--${k} needs a positive integer`);
    } else {
      out[k] = Number(out[k]);
    }
  }
  return out;
}

function bad(usage, why) {
  process.stderr.write(`${why}\nusage: ${usage}\n`);
  process.exit(2);
}

module.exports = { parse };
