/**
 * Browser entry point: the classifier on onnxruntime-web (wasm, single-threaded), files fetched from URLs,
 * sha256 from Web Crypto. The page maps the bare specifier 'onnxruntime-web' with an import map.
 * @module browser
 */
import * as ort from 'onnxruntime-web';
import { SentimentClassifier as Core } from './classifier.js';

/**
 * The first `limit + 1` bytes (at most) of a URL's body: a body longer than the manifest says is not read on.
 * A 404 throws an Error with code 'ENOENT'.
 * @param {string} url
 * @param {number} limit
 * @returns {Promise<Uint8Array>}
 */
export async function fetchCapped(url, limit) {
  const response = await fetch(url);
  if (!response.ok) throw Object.assign(new Error(`HTTP ${response.status}`), { code: response.status === 404 ? 'ENOENT' : undefined });
  if (!response.body) return new Uint8Array(await response.arrayBuffer());
  const reader = response.body.getReader();
  const chunks = [];
  let total = 0;
  while (total <= limit) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    total += value.length;
  }
  if (total > limit) await reader.cancel();
  const bytes = new Uint8Array(Math.min(total, limit + 1));
  let at = 0;
  for (const chunk of chunks) {
    const part = chunk.subarray(0, bytes.length - at);
    bytes.set(part, at);
    at += part.length;
  }
  return bytes;
}

/**
 * @param {string} [wasmPaths] where ort-wasm-*.wasm/.mjs are served (default: ONNX Runtime's own guess)
 * @returns {import('./classifier.js').Platform}
 */
export function browserPlatform(wasmPaths) {
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  if (wasmPaths) ort.env.wasm.wasmPaths = wasmPaths;
  return {
    ort,
    read: fetchCapped,
    sha256: async (bytes) => Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)),
      (b) => b.toString(16).padStart(2, '0')).join(''),
    join: (base, name) => new URL(name, new URL(base, location.href)).href,
    sessionOptions: { executionProviders: ['wasm'], graphOptimizationLevel: 'all', executionMode: 'sequential' },
  };
}

/** The classifier in a browser. */
export class SentimentClassifier extends Core {
  /**
   * Load and verify a model from a URL: the folder (ending in '/') or its manifest.json.
   * @param {string} url
   * @param {{quantized?: boolean, wasmPaths?: string}} [options]
   * @returns {Promise<Core>}
   */
  static async load(url, { quantized = false, wasmPaths } = {}) {
    const base = url.endsWith('/') || url.endsWith('manifest.json') ? url : `${url}/`;
    return Core.loadWith(browserPlatform(wasmPaths), base, { quantized });
  }
}

export { ModelError, ManifestError, IntegrityError } from './manifest.js';
export { tokenize, normalize, Tokenizer, Vocabulary } from './tokenizer.js';
export { tokenizeWithOffsets } from './offsets.js';
