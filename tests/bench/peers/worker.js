#!/usr/bin/env node
// worker.js - one worker of queue "bench" on the Redis at 127.0.0.1:PORT, with a
// no-op handler at concurrency C, for scripts/bench. When COUNT jobs have
// completed in this process (BullMQ's "completed" event on the Worker, or
// bee-queue's "succeeded" on the worker queue: both fire once the job's new
// state is written to Redis) it prints one JSON line,
//   {"done":COUNT,"ms":<milliseconds since the process started>}
// and goes on running, idle, so that the bench can read its CPU time and peak
// RSS; SIGTERM or SIGINT close the worker and end the process. A failed job
// (a no-op cannot fail) ends it at once with status 1; an error the library
// reports is printed on stderr and makes the exit status 1. The queue
// libraries are used with their default settings.
'use strict';

const { parse } = require('./args');

const USAGE = 'node worker.js --system bullmq|bullmq-roc|beequeue --port PORT --count N --concurrency C';
const a = parse(process.argv.slice(2), USAGE, ['system', 'port', 'count', 'concurrency']);

let done = 0;
function completed() {
  done += 1;
  if (done === a.count) {
    console.log(JSON.stringify({ done, ms: Math.round(process.uptime() * 1000) }));
  }
}
function failed(what, err) {
  console.error(`worker: ${what}: ${err && err.message ? err.message : err}`);
  process.exitCode = 1;
}
function fatal(what, err) {
  failed(what, err);
  process.exit(1);
}

let close;
if (a.system === 'beequeue') {
  const Queue = require('bee-queue');
  const q = new Queue('bench', { redis: { host: '127.0.0.1', port: a.port } });
  q.on('succeeded', completed);
  q.on('failed', (job, err) => fatal(`job ${job.id} failed`, err));
  q.on('error', (err) => failed('bee-queue', err));
  q.process(a.concurrency, async () => {});
  close = () => q.close();
} else {
  // bullmq and bullmq-roc: the same worker; removeOnComplete is an option of
  // the jobs (enqueue.js).
  const { Worker } = require('bullmq');
  const w = new Worker('bench', async () => {}, {
    connection: { host: '127.0.0.1', port: a.port },
    concurrency: a.concurrency,
  });
  w.on('completed', completed);
  w.on('failed', (job, err) => fatal(`job ${job && job.id} failed`, err));
  w.on('error', (err) => failed('bullmq', err));
  close = () => w.close();
}

let closing = false;
function stop() {
  if (closing) return;
  closing = true;
  Promise.resolve()
    .then(close)
    .catch((err) => failed('close', err))
    .finally(() => process.exit());
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
