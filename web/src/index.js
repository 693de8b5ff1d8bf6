/** Package entry under Node (`import { SentimentClassifier } from 'edge-infer-web'`); browsers use src/browser.js. */
export * from './node.js';
