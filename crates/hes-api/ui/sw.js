// Service worker: keeps the application shell for offline start and installation. It never
// touches /api (data is always live), nor /metrics, /healthz and /readyz.
const VERSION = 'hes-ui-v2';
const SHELL = [
  '/', '/index.html', '/app.css', '/manifest.webmanifest',
  '/js/app.js', '/js/api.js', '/js/ws.js', '/js/ui.js', '/js/chart.js',
  '/js/pages/login.js', '/js/pages/dashboard.js', '/js/pages/meters.js', '/js/pages/meter.js',
  '/js/pages/alarms.js', '/js/pages/jobs.js', '/js/pages/admin.js',
  '/vendor/uPlot.iife.min.js', '/vendor/uPlot.min.css', '/vendor/uPlot.LICENSE',
  '/icons/icon.svg', '/icons/icon-192.png', '/icons/icon-512.png', '/icons/icon-maskable-512.png',
];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(VERSION).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== VERSION).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

function bypass(url) {
  return url.origin !== self.location.origin || url.pathname.startsWith('/api/')
    || url.pathname === '/api' || ['/metrics', '/healthz', '/readyz'].includes(url.pathname);
}

// Network first (the server answers 304 quickly thanks to ETags), the cached shell when offline.
self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (bypass(url)) return;
  event.respondWith((async () => {
    const cache = await caches.open(VERSION);
    try {
      const res = await fetch(req);
      if (res.ok && res.type === 'basic') cache.put(req.mode === 'navigate' ? '/' : req, res.clone());
      return res;
    } catch (e) {
      const hit = await cache.match(req.mode === 'navigate' ? '/' : req, { ignoreSearch: true });
      if (hit) return hit;
      throw e;
    }
  })());
});
