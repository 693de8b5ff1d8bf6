#!/usr/bin/env node
/**
 * `npm run build-demo`: put what demo/index.html needs beside it (all git-ignored, nothing committed twice):
 *   demo/model/   manifest.json plus the files it lists for the demo (vocab and int8; --fp32 adds fp32),
 *                 copied from ../models/default (or --model DIR), names read from the manifest;
 *   demo/vendor/  onnxruntime-web's wasm build (ort.wasm.min.mjs, ort-wasm-simd-threaded.{mjs,wasm});
 *   demo/lib/     src/*.js, the bare 'onnxruntime-web' import pointed at ../vendor/;
 *   demo/lib/precache.json  every file above, for the service worker (offline after the first load).
 */
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ORT_FILES = ['ort.wasm.min.mjs', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm'];

/**
 * Build the demo folder; returns {files, bytes} of everything the page loads.
 * @param {{model?: string, fp32?: boolean, demo?: string}} [options]
 */
export function buildDemo({ model = path.join(WEB, '..', 'models', 'default'), fp32 = false,
  demo = path.join(WEB, 'demo') } = {}) {
  for (const dir of ['model', 'vendor', 'lib']) {
    rmSync(path.join(demo, dir), { recursive: true, force: true });
    mkdirSync(path.join(demo, dir));
  }
  const manifest = JSON.parse(readFileSync(path.join(model, 'manifest.json'), 'utf8'));
  const keys = ['vocab', manifest.files.int8 ? 'int8' : 'fp32', ...(fp32 && manifest.files.int8 ? ['fp32'] : [])];
  const copied = ['model/manifest.json'];
  copyFileSync(path.join(model, 'manifest.json'), path.join(demo, 'model', 'manifest.json'));
  for (const key of keys) {
    const name = manifest.files[key].path;
    copyFileSync(path.join(model, name), path.join(demo, 'model', name));
    copied.push(`model/${name}`);
  }
  const ortDist = path.join(WEB, 'node_modules', 'onnxruntime-web', 'dist');
  for (const name of ORT_FILES) {
    copyFileSync(path.join(ortDist, name), path.join(demo, 'vendor', name));
    copied.push(`vendor/${name}`);
  }
  for (const name of readdirSync(path.join(WEB, 'src')).filter((n) => n.endsWith('.js'))) {
    if (name === 'node.js' || name === 'index.js') continue;
    const text = readFileSync(path.join(WEB, 'src', name), 'utf8')
      .replaceAll("from 'onnxruntime-web'", "from '../vendor/ort.wasm.min.mjs'");
    writeFileSync(path.join(demo, 'lib', name), text);
    copied.push(`lib/${name}`);
  }
  const page = readdirSync(demo).filter((n) => statSync(path.join(demo, n)).isFile());
  const files = [...page, ...copied];
  writeFileSync(path.join(demo, 'lib', 'precache.json'), JSON.stringify({ quantized: keys.includes('int8'), files }, null, 1));
  const bytes = files.reduce((sum, f) => sum + statSync(path.join(demo, f)).size, 0);
  return { files, bytes };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--model');
  const { files, bytes } = buildDemo({ model: at >= 0 ? args[at + 1] : undefined, fp32: args.includes('--fp32') });
  console.log(`demo/: ${files.length} files, ${(bytes / 1e6).toFixed(2)} MB the page loads`);
}
