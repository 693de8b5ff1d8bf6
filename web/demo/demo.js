// The demo page: load the model beside the page (int8 by default; ?fp32 for the fp32 file), classify as you type.
import { SentimentClassifier } from './lib/browser.js';

const $ = (id) => document.getElementById(id);
const status = (text, state) => { $('status').textContent = text; $('status').dataset.state = state; };

async function main() {
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register('sw.js').catch((err) => console.warn('no offline cache:', err));
  }
  const quantized = !new URLSearchParams(location.search).has('fp32');
  const started = performance.now();
  const clf = await SentimentClassifier.load(new URL('model/', location.href).href,
    { quantized, wasmPaths: new URL('vendor/', location.href).href });
  const m = clf.manifest;
  status(`Model "${m.name}" (${quantized ? 'int8' : 'fp32'}, vocabulary ${clf.tokenizer.vocabulary.size} tokens, ` +
    `sha256 verified) ready in ${Math.round(performance.now() - started)} ms.`, 'ready');
  $('review').disabled = false;
  $('review').focus();
  $('score').textContent = 'Type something.';

  let pending = 0;
  const show = async () => {
    const text = $('review').value;
    const ticket = ++pending;
    if (!text.trim()) {
      Object.assign($('result').dataset, { state: 'empty', label: '' });
      $('label').textContent = '—'; $('score').textContent = 'Type something.'; $('scores').textContent = '';
      $('bar').style.width = '0';
      return;
    }
    let p;
    try {
      p = await clf.predict(text);
    } catch (err) {
      if (ticket === pending) { $('score').textContent = err.message; $('result').dataset.state = 'refused'; }
      return;
    }
    if (ticket !== pending) return; // a newer keystroke won
    Object.assign($('result').dataset, { state: 'done', label: p.label, score: String(p.score), text });
    $('label').textContent = p.label;
    $('bar').style.width = `${(p.score * 100).toFixed(1)}%`;
    $('score').textContent = clf.binary ? `P(${clf.labels[1]}) = ${p.score.toFixed(4)}` : `${p.score.toFixed(4)}`;
    $('scores').replaceChildren(...Object.entries(p.scores).map(([l, v]) => {
      const li = document.createElement('li'); li.textContent = `${l}: ${v.toFixed(4)}`; return li;
    }));
  };
  $('review').addEventListener('input', show);
}

main().catch((err) => { status(`Cannot load the model: ${err.message}`, 'error'); console.error(err); });
