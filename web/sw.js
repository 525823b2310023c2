// The offline cache of the sketchgpu page: network first (so a running server always serves fresh files), the
// cache when the network fails. The page shell is cached here on install; the page adds the weights and the sample
// gallery once it has loaded them (web/app.ts, registerOffline).
const CACHE = 'sketchgpu-web-v1';
const SHELL = ['./', 'index.html', 'style.css', 'config.json', '../dist/web/app.js', '../dist/web/sample.json'];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET' || new URL(req.url).origin !== self.location.origin || req.headers.has('range')) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    try {
      const res = await fetch(req);
      if (res.ok && res.status === 200 && res.type === 'basic') event.waitUntil(cache.put(req, res.clone()));
      return res;
    } catch (err) {
      const hit = await cache.match(req, { ignoreSearch: req.mode === 'navigate' });
      if (hit) return hit;
      throw err;
    }
  })());
});
