/**
 * Tokens with the span of raw text each came from: the port of edge_infer/tokenizer.py's
 * `tokenize_with_offsets` (same steps, same grouping; spans here are UTF-16 indices, Python's are code points).
 * @module offsets
 */
import { APOSTROPHES, HTML_TAG, casefold, contractionEdits, expandContractions, isAscii, nfkc } from './normalize.js';
import { COMBINING_CLASS, WORD_CLASS } from './tables.js';
import { CHARREF, unescapeHtml } from './unescape.js';
import { tokenize } from './tokenizer.js';

const TOKEN = new RegExp(`[${WORD_CLASS}]+|[!?]`, 'gu');
const COMBINING = new RegExp(`^[${COMBINING_CLASS}]$`, 'u');

function copy(into, from, start, end) {
  for (let k = start; k < end; k++) into.push(from[k]);
}

/** A string being normalized, each UTF-16 unit tied to the span [lo, hi) of raw text it came from. */
class Mapped {
  constructor(text) {
    this.s = text;
    this.lo = Array.from({ length: text.length }, (_, i) => i);
    this.hi = Array.from({ length: text.length }, (_, i) => i + 1);
    this.coarse = false;
  }

  /** Apply sorted, non-overlapping edits; if the result is not `expected`, tie all of `expected` to the whole text. */
  edit(edits, expected) {
    let out = this.s;
    let { lo, hi } = this;
    if (edits.length) {
      const pieces = [];
      lo = [];
      hi = [];
      let last = 0;
      for (const [start, end, replacement] of edits) {
        pieces.push(this.s.slice(last, start), replacement);
        copy(lo, this.lo, last, start);
        copy(hi, this.hi, last, start);
        for (let k = 0; k < replacement.length; k++) {
          lo.push(this.lo[start]);
          hi.push(this.hi[end - 1]);
        }
        last = end;
      }
      pieces.push(this.s.slice(last));
      copy(lo, this.lo, last, this.lo.length);
      copy(hi, this.hi, last, this.hi.length);
      out = pieces.join('');
    }
    if (out !== expected) {
      const whole = this.hi.length ? this.hi[this.hi.length - 1] : 0;
      out = expected;
      lo = new Array(expected.length).fill(0);
      hi = new Array(expected.length).fill(whole);
      this.coarse = true;
    }
    Object.assign(this, { s: out, lo, hi });
  }
}

/** NFKC as edits over groups of code points, exactly as Python's `_nfkc_groups`. */
function nfkcGroups(text) {
  const edits = [];
  let start = 0;
  let i = text.length ? String.fromCodePoint(text.codePointAt(0)).length : 0;
  for (;;) {
    if (i < text.length) {
      const ch = String.fromCodePoint(text.codePointAt(i));
      if (ch.codePointAt(0) >= 0x80) {
        if (COMBINING.test(ch)) { i += ch.length; continue; }
        const group = text.slice(start, i);
        if (nfkc(group + ch) !== nfkc(group) + nfkc(ch)) { i += ch.length; continue; }
      }
    }
    const group = text.slice(start, i);
    const folded = nfkc(group);
    if (folded !== group) edits.push([start, i, folded]);
    if (i >= text.length) break;
    start = i;
    i += String.fromCodePoint(text.codePointAt(i)).length;
  }
  return edits;
}

function casefoldEdits(text) {
  const edits = [];
  for (let i = 0; i < text.length;) {
    const ch = String.fromCodePoint(text.codePointAt(i));
    const folded = casefold(ch);
    if (folded !== ch) edits.push([i, i + ch.length, folded]);
    i += ch.length;
  }
  return edits;
}

/** `normalize`, step by step, keeping each unit's source span (edge_infer/tokenizer.py `_mapped_normalize`). */
export function mappedNormalize(text) {
  const m = new Mapped(text);
  if (text.includes('<')) {
    m.edit([...m.s.matchAll(HTML_TAG)].map((x) => [x.index, x.index + x[0].length, ' ']), m.s.replace(HTML_TAG, ' '));
  }
  if (m.s.includes('&')) {
    m.edit([...m.s.matchAll(CHARREF)].map((x) => [x.index, x.index + x[0].length, unescapeHtml(x[0])]), unescapeHtml(m.s));
  }
  if (!isAscii(m.s)) m.edit(nfkcGroups(m.s), nfkc(m.s));
  m.s = m.s.replace(APOSTROPHES, "'"); // one unit for one: spans unchanged
  if (isAscii(m.s)) m.s = m.s.toLowerCase();
  else m.edit(casefoldEdits(m.s), casefold(m.s));
  if (m.s.includes("'")) m.edit(contractionEdits(m.s), expandContractions(m.s));
  return m;
}

/**
 * `tokenize(text)`'s tokens with the span [start, end) of `text` (UTF-16 indices: `text.slice(start, end)`)
 * each came from; the same spans as Python's `tokenize_with_offsets`, counted in code units.
 * @param {string} text
 * @returns {{tokens: string[], spans: Array<[number, number]>}}
 */
export function tokenizeWithOffsets(text) {
  const m = mappedNormalize(text);
  const tokens = [];
  const spans = [];
  for (const x of m.s.matchAll(TOKEN)) {
    tokens.push(x[0]);
    spans.push([m.lo[x.index], m.hi[x.index + x[0].length - 1]]);
  }
  const expected = tokenize(text);
  if (tokens.length !== expected.length || tokens.some((t, i) => t !== expected[i])) {
    return { tokens: expected, spans: expected.map(() => [0, text.length]) };
  }
  return { tokens, spans };
}

