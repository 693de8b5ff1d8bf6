/**
 * A minimal reader of the labelled aclImdb .tar.gz for the tests: node:zlib + a ustar/pax header parser.
 * @module test/archive
 */
import { createReadStream, existsSync } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** `$EDGE_INFER_DATA`, else ../shared/data/aclImdb_labeled.tar.gz beside the repository (as train/data.py). */
export const DATA = process.env.EDGE_INFER_DATA
  ?? path.resolve(HERE, '..', '..', '..', 'shared', 'data', 'aclImdb_labeled.tar.gz');
export const MEMBER = /^aclImdb\/(train|test)\/(pos|neg)\/\d+_\d+\.txt$/;

export function dataPresent() { return existsSync(DATA); }

function field(block, start, length) {
  const end = block.indexOf(0, start);
  return block.toString('utf8', start, end === -1 || end > start + length ? start + length : end);
}

function pathFromPax(data) {
  let name;
  for (let i = 0; i < data.length;) {
    const space = data.indexOf(0x20, i);
    const len = parseInt(data.toString('ascii', i, space), 10);
    const record = data.toString('utf8', space + 1, i + len - 1);
    const eq = record.indexOf('=');
    if (record.slice(0, eq) === 'path') name = record.slice(eq + 1);
    i += len;
  }
  return name;
}

/**
 * Every regular file of a .tar.gz in archive order, as `{name, data}`.
 * @param {string} file
 * @returns {AsyncGenerator<{name: string, data: Buffer}>}
 */
export async function* tarEntries(file) {
  let buf = Buffer.alloc(0);
  let longName;
  const stream = createReadStream(file).pipe(createGunzip({ chunkSize: 1 << 20 }));
  const chunks = [];
  let pending = 0;
  let need = 512;
  let header = null;
  for await (const chunk of stream) {
    chunks.push(chunk);
    pending += chunk.length;
    if (pending < need) continue;
    buf = Buffer.concat([buf, ...chunks]);
    chunks.length = 0;
    pending = 0;
    let at = 0;
    for (;;) {
      if (header === null) {
        if (buf.length - at < 512) break;
        const block = buf.subarray(at, at + 512);
        if (block.every((b) => b === 0)) { at += 512; continue; }
        const size = parseInt(field(block, 124, 12).trim() || '0', 8);
        const prefix = field(block, 345, 155);
        const type = String.fromCharCode(block[156] || 0x30);
        let name = field(block, 0, 100);
        if (prefix) name = `${prefix}/${name}`;
        header = { name, size, type };
        at += 512;
      }
      const padded = Math.ceil(header.size / 512) * 512;
      if (buf.length - at < padded) { need = padded - (buf.length - at); break; }
      const data = buf.subarray(at, at + header.size);
      at += padded;
      const { name, type } = header;
      header = null;
      need = 512;
      if (type === 'x') longName = pathFromPax(data) ?? longName;
      else if (type === 'L') longName = data.toString('utf8').replace(/\0+$/, '');
      else if (type === '0' || type === '\0' || type === '7') {
        yield { name: longName ?? name, data: Buffer.from(data) };
        longName = undefined;
      } else longName = undefined;
    }
    buf = buf.subarray(at);
  }
}

/**
 * The labelled reviews (train and test, pos and neg) in archive order.
 * @param {string} [file]
 * @returns {AsyncGenerator<{name: string, text: string}>}
 */
export async function* labelledReviews(file = DATA) {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  for await (const { name, data } of tarEntries(file)) {
    if (MEMBER.test(name)) yield { name, text: decoder.decode(data) };
  }
}
