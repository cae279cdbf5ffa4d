#!/usr/bin/env node
// enqueue.js - put COUNT no-op jobs on queue "bench" of a Redis at 127.0.0.1:PORT,
// for scripts/bench, before its worker (worker.js) starts. Each job's data is
// {"note":"xxx..."}, exactly SIZE bytes as JSON (what jetfleet's jobs carry).
//   bullmq      BullMQ Queue#addBulk, default job options
//   bullmq-roc  the same with { removeOnComplete: true } on every job
//   beequeue    bee-queue Queue#saveAll, a producer-only queue (isWorker and
//               getEvents false), default job options
// Batches of 1,000. Prints one JSON line: {"system","count","size","elapsed_ms"}.
'use strict';

const { parse } = require('./args');

const USAGE = 'node enqueue.js --system bullmq|bullmq-roc|beequeue --port PORT --count N --size BYTES';
const a = parse(process.argv.slice(2), USAGE, ['system', 'port', 'count', 'size']);
if (a.size < 12) {
  process.stderr.write('--size must be at least 12 ({"note":"x"})\n');
  process.exit(2);
}
const data = { note: 'x'.repeat(a.size - 11) };
const BATCH = 1000;

async function bullmq(roc) {
  const { Queue } = require('bullmq');
  const q = new Queue('bench', { connection: { host: '127.0.0.1', port: a.port } });
  const opts = roc ? { removeOnComplete: true } : undefined;
  for (let i = 0; i < a.count; i += BATCH) {
    const jobs = [];
    for (let j = i; j < Math.min(a.count, i + BATCH); j++) jobs.push({ name: 'diag.noop', data, opts });
    await q.addBulk(jobs);
  }
  await q.close();
}

async function beequeue() {
  const Queue = require('bee-queue');
  const q = new Queue('bench', {
    redis: { host: '127.0.0.1', port: a.port },
    isWorker: false,
    getEvents: false,
    storeJobs: false,
  });
  await q.ready();
  for (let i = 0; i < a.count; i += BATCH) {
    const jobs = [];
    for (let j = i; j < Math.min(a.count, i + BATCH); j++) jobs.push(q.createJob(data));
    const errors = await q.saveAll(jobs);
    if (errors.size > 0) throw errors.values().next().value;
  }
  await q.close();
}

async function main() {
  const t0 = process.hrtime.bigint();
  if (a.system === 'beequeue') await beequeue();
  else await bullmq(a.system === 'bullmq-roc');
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  console.log(JSON.stringify({ system: a.system, count: a.count, size: a.size, elapsed_ms: Math.round(ms) }));
}

main().catch((err) => {
  console.error(`enqueue: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});
