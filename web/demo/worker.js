// The model runs here, off the page's thread, so typing never waits for it. Only the newest text is worked on:
// texts that arrive while a run is going replace each other, and an explanation is skipped when a newer text
// is already waiting.
import { SentimentClassifier } from './lib/browser.js';

/** Texts of which the model reads more tokens are classified but not explained as you type (cost ~ tokens²). */
const MAX_EXPLAIN_TOKENS = 400;

let clf;
let pending = null;
let busy = false;

async function load(quantized) {
  const started = performance.now();
  try {
    clf = await SentimentClassifier.load(new URL('model/', location.href).href,
      { quantized, wasmPaths: new URL('vendor/', location.href).href });
  } catch (err) {
    self.postMessage({ type: 'error', message: err.message });
    return;
  }
  self.postMessage({ type: 'ready', name: clf.manifest.name, labels: clf.labels, binary: clf.binary,
    vocabulary: clf.tokenizer.vocabulary.size, ms: Math.round(performance.now() - started) });
}

async function drain() {
  busy = true;
  while (pending) {
    const { id, text } = pending;
    pending = null;
    let prediction;
    try {
      prediction = await clf.predict(text);
    } catch (err) {
      self.postMessage({ type: 'refused', id, text, message: err.message });
      continue;
    }
    self.postMessage({ type: 'prediction', id, text, prediction });
    if (pending) continue;
    const label = clf.binary ? clf.labels[1] : prediction.label; // binary: colours always mean the same side
    try {
      const explanation = await clf.explain(text, { label, maxTokens: MAX_EXPLAIN_TOKENS });
      self.postMessage({ type: 'explanation', id, text, explanation });
    } catch (err) {
      self.postMessage({ type: 'unexplained', id, text, message: err.message });
    }
  }
  busy = false;
}

self.onmessage = ({ data }) => {
  if (data.type === 'load') {
    load(data.quantized);
    return;
  }
  pending = data;
  if (!busy) drain();
};
