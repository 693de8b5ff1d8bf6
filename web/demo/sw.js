// Offline after the first load: precache every file the page needs (lib/precache.json, written by
// `npm run build-demo`), then answer same-origin GETs from the cache first.
const CACHE = 'edge-infer-demo-v1';

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const list = await (await fetch('lib/precache.json', { cache: 'no-store' })).json();
    const cache = await caches.open(CACHE);
    await cache.addAll(['./', ...list.files]);
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    const hit = await cache.match(event.request, { ignoreSearch: true });
    if (hit) return hit;
    const response = await fetch(event.request);
    if (response.ok) cache.put(event.request, response.clone());
    return response;
  })());
});
