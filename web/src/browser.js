/**
 * Browser entry point: the classifier on onnxruntime-web (wasm, single-threaded), files fetched from URLs,
 * sha256 from Web Crypto. The page maps the bare specifier 'onnxruntime-web' with an import map.
 * @module browser
 */
import * as ort from 'onnxruntime-web';
import { SentimentClassifier as Core } from './classifier.js';

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
    read: async (url) => {
      const response = await fetch(url);
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      return new Uint8Array(await response.arrayBuffer());
    },
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

export { ModelError, IntegrityError } from './manifest.js';
export { tokenize, normalize, Tokenizer, Vocabulary } from './tokenizer.js';
