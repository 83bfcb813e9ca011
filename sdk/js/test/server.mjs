// A real `cloudlet serve` for the SDK's tests: the binary is $CLOUDLET_BIN
// (the Rust test that runs these sets it), on a free loopback port and a
// fresh data directory, with functions deployed by the `cloudlet` command.

import { spawn, execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';

export const ADMIN_KEY = 'sdk-test-admin';
/** The repository, for its README and examples. */
export const REPO = new URL('../../../', import.meta.url).pathname;
export const BIN = process.env.CLOUDLET_BIN ?? 'cloudlet';
/** The built SDK (`node build.mjs DIR`). */
export const SDK_DIR = process.env.CLOUDLET_SDK_DIST ?? new URL('../dist', import.meta.url).pathname;

export async function sdk() {
  return import(join(SDK_DIR, 'cloudlet.mjs'));
}

/** Starts a server; `stop()` kills it and removes its data. */
export async function startServer(extraArgs = []) {
  const root = mkdtempSync(join(tmpdir(), 'cloudlet-sdk-test-'));
  const args = ['serve', '--listen', '127.0.0.1:0', '--data-dir', join(root, 'data'), '--admin-key', ADMIN_KEY, ...extraArgs];
  const child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, RUST_LOG: 'warn' } });
  const url = await new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      const found = line.match(/^cloudlet listening on (\S+)/);
      if (found) resolve(found[1]);
    });
    child.on('exit', (code) => reject(new Error(`cloudlet serve exited with ${code}`)));
  });
  const cli = (...cliArgs) =>
    execFileSync(BIN, cliArgs, {
      env: { ...process.env, CLOUDLET_SERVER: url, CLOUDLET_KEY: ADMIN_KEY },
      encoding: 'utf8',
      stdio: 'pipe',
    }).trim();
  let count = 0;
  /** Deploys a function made of `files` ({path: text}) to `env`. */
  const deploy = (name, files, env = 'default') => {
    const dir = join(root, 'functions', `${name}-${count++}`, name);
    for (const [path, text] of Object.entries(files)) {
      const file = join(dir, path);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, text);
      if (path === 'scf_bootstrap') chmodSync(file, 0o755);
    }
    cli('deploy', dir, '--env', env);
  };
  const stop = () => {
    child.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  };
  return { url, cli, deploy, stop, dataDir: join(root, 'data') };
}

/** Records are written just after the answer: asks until `read` stops throwing. */
export async function eventually(read) {
  for (let attempt = 0; ; attempt++) {
    try {
      return read();
    } catch (error) {
      if (attempt === 40) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** An event function in the js engine. */
export function jsFunction(source, config = { timeout: 10 }) {
  return { 'index.js': source, 'config.json': JSON.stringify(config) };
}

/** An event function in the Node.js engine. */
export function nodeFunction(source, config = { timeout: 10 }) {
  return { 'index.js': source, 'config.json': JSON.stringify({ runtime: 'Nodejs18.15', ...config }) };
}

/** An HTTP function: `app.js` run by Node.js behind `scf_bootstrap`. */
export function httpFunction(app, config = { timeout: 10 }) {
  return {
    'app.js': app,
    scf_bootstrap: '#!/bin/bash\nexec /var/lang/node18/bin/node app.js\n',
    'config.json': JSON.stringify(config),
  };
}

/** The README's `lang` code blocks in its client-SDK section. */
export function readmeBlocks(lang) {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const section = readme.split('\n## ').find((part) => part.startsWith('Client SDK'));
  const blocks = [...section.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))];
  return blocks.map((block) => block[1]);
}
