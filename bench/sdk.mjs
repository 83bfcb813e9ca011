// The sdk phase of bench/run.sh: what the client SDK (sdk/js) adds to a
// call, and a 1 MB field sent through CDN() against inline.
//
// Usage: node bench/sdk.mjs SERVER_URL SDK_MODULE CALLS ROUNDS CDN_ROUNDS OUT.json
//
// Latency: ROUNDS rounds, each CALLS sequential calls of `sum` with
// cloud.callFunction and CALLS with a bare fetch of the same endpoint (the
// same method, headers and body, the answer read and parsed), the two
// alternating which goes first; the per-call times of all rounds pooled.
// CDN: CDN_ROUNDS rounds of a 1 MiB string to `size`, inline and as a CDN
// field (upload, invoke, and the function's fetch of the object).

import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const [url, sdkModule, calls, rounds, cdnRounds, out] = process.argv.slice(2);
const { Cloud } = await import(sdkModule);
const cloud = new Cloud({ endpoint: url, env: 'default' });
const invokeUrl = `${url}/v1/envs/default/functions/sum`;
const event = { x: 1, y: 2 };

async function bare() {
  const response = await fetch(invokeUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(event),
  });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return JSON.parse(await response.text());
}

async function withSdk() {
  return (await cloud.callFunction({ name: 'sum', data: event })).result;
}

async function timed(call, n, into) {
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    const result = await call();
    into.push((performance.now() - started) * 1000);
    if (result !== 3) throw new Error(`sum answered ${result}`);
  }
}

function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function summary(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  return { n: sorted.length, p50_us: quantile(sorted, 0.5), p90_us: quantile(sorted, 0.9), p99_us: quantile(sorted, 0.99) };
}

// Warm both paths (connections, JIT) before measuring.
await timed(bare, 500, []);
await timed(withSdk, 500, []);
const fetchUs = [];
const sdkUs = [];
for (let round = 0; round < Number(rounds); round++) {
  const order = round % 2 === 0 ? [[bare, fetchUs], [withSdk, sdkUs]] : [[withSdk, sdkUs], [bare, fetchUs]];
  for (const [call, into] of order) await timed(call, Number(calls), into);
}

const text = 'x'.repeat(1024 * 1024);
const inlineMs = [];
const cdnMs = [];
for (let round = 0; round < Number(cdnRounds); round++) {
  let started = performance.now();
  const inline = await cloud.callFunction({ name: 'size', data: { data: text } });
  inlineMs.push(performance.now() - started);
  started = performance.now();
  const viaCdn = await cloud.callFunction({ name: 'size', data: { url: cloud.CDN(text) } });
  cdnMs.push(performance.now() - started);
  if (inline.result !== text.length || viaCdn.result !== text.length) throw new Error('size answered wrong');
}
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

const fetchSummary = summary(fetchUs);
const sdkSummary = summary(sdkUs);
const result = {
  calls: Number(calls),
  rounds: Number(rounds),
  fetch: fetchSummary,
  sdk: sdkSummary,
  added_p50_us: sdkSummary.p50_us - fetchSummary.p50_us,
  added_p99_us: sdkSummary.p99_us - fetchSummary.p99_us,
  cdn: { bytes: text.length, rounds: Number(cdnRounds), inline_ms: median(inlineMs), cdn_ms: median(cdnMs) },
};
writeFileSync(out, JSON.stringify(result, null, 2));
console.log(JSON.stringify(result));
