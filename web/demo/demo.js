// The demo page: classify and explain as you type. The model lives in a worker (worker.js): the page's thread
// only draws, so the textarea never waits for ONNX Runtime. int8 by default; ?fp32 for the fp32 file.
import { isBlank } from './lib/task.js';

const $ = (id) => document.getElementById(id);
const status = (text, state) => { $('status').textContent = text; $('status').dataset.state = state; };
const FAINT = 0.1; // words under this share of the strongest |contribution| stay unshaded

function showPrediction(p, text, binary, labels) {
  Object.assign($('result').dataset, { state: 'done', label: p.label, score: String(p.score), text });
  $('label').textContent = p.label;
  $('bar').style.width = `${(p.score * 100).toFixed(1)}%`;
  $('score').textContent = binary ? `P(${labels[1]}) = ${p.score.toFixed(4)}` : `${p.score.toFixed(4)}`;
  $('scores').replaceChildren(...Object.entries(p.scores).map(([l, v]) => {
    const li = document.createElement('li'); li.textContent = `${l}: ${v.toFixed(4)}`; return li;
  }));
}

/** The text with each word shaded: green raises the explained label's probability, red lowers it. */
function showExplanation(e, text) {
  const largest = Math.max(0, ...e.words.filter((w) => w.seen).map((w) => Math.abs(w.contribution)));
  const nodes = [];
  let at = 0;
  for (const w of e.words) {
    if (w.start < at) continue; // a span shared with the word before (e.g. "½"): shown once
    if (w.start > at) nodes.push(document.createTextNode(text.slice(at, w.start)));
    const span = document.createElement('span');
    span.className = 'w';
    span.textContent = text.slice(w.start, w.end);
    Object.assign(span.dataset, { token: w.token, contribution: String(w.contribution), start: String(w.start),
      end: String(w.end), seen: String(w.seen) });
    const strength = largest > 0 ? Math.abs(w.contribution) / largest : 0;
    if (!w.seen) span.classList.add('unseen');
    else if (strength >= FAINT) {
      const rgb = w.contribution > 0 ? '24,121,78' : '192,57,43';
      span.style.background = `rgba(${rgb},${(0.15 + 0.65 * strength).toFixed(2)})`;
    }
    span.title = `${w.token}: ${w.contribution >= 0 ? '+' : ''}${w.contribution.toPrecision(3)}`;
    nodes.push(span);
    at = w.end;
  }
  if (at < text.length) nodes.push(document.createTextNode(text.slice(at)));
  $('explained').replaceChildren(...nodes);
  Object.assign($('explained').dataset, { state: 'done', text, label: e.explained_label });
  $('legend').textContent = `Green raises P(${e.explained_label}), red lowers it (the drop when the word is left ` +
    'out; deeper = stronger).';
}

function main() {
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register('sw.js').catch((err) => console.warn('no offline cache:', err));
  }
  const quantized = !new URLSearchParams(location.search).has('fp32');
  const worker = new Worker('worker.js', { type: 'module' });
  let model = null;
  let latest = 0;
  worker.onerror = (event) => status(`Cannot start the model's worker: ${event.message}`, 'error');
  worker.onmessage = ({ data }) => {
    if (data.type === 'error') { status(`Cannot load the model: ${data.message}`, 'error'); return; }
    if (data.type === 'ready') {
      model = data;
      status(`Model "${data.name}" (${quantized ? 'int8' : 'fp32'}, vocabulary ${data.vocabulary} tokens, ` +
        `sha256 verified) ready in ${data.ms} ms; it runs in a worker, off the page's thread.`, 'ready');
      $('review').disabled = false;
      $('review').focus();
      $('score').textContent = 'Type something.';
      return;
    }
    if (data.id !== latest) return; // a newer keystroke won
    if (data.type === 'refused') { $('score').textContent = data.message; $('result').dataset.state = 'refused'; }
    if (data.type === 'prediction') showPrediction(data.prediction, data.text, model.binary, model.labels);
    if (data.type === 'explanation') showExplanation(data.explanation, data.text);
    if (data.type === 'unexplained') {
      $('explained').textContent = data.text;
      Object.assign($('explained').dataset, { state: 'unexplained', text: data.text });
      $('legend').textContent = `Not explained as you type: ${data.message}.`;
    }
  };
  worker.postMessage({ type: 'load', quantized });

  $('review').addEventListener('input', () => {
    const text = $('review').value;
    latest += 1;
    if (isBlank(text)) { // the package's empty-text rule (src/task.js), as the worker's classifier applies it
      Object.assign($('result').dataset, { state: 'empty', label: '' });
      $('label').textContent = '—'; $('score').textContent = 'Type something.'; $('scores').textContent = '';
      $('bar').style.width = '0';
      $('explained').textContent = '';
      $('explained').dataset.state = 'empty';
      return;
    }
    $('explained').dataset.state = 'working';
    worker.postMessage({ id: latest, text });
  });
}

main();
