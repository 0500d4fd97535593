// The demo's service worker: the page works offline once it has been loaded. Every same-origin
// GET goes to the network first (so an update is seen at once when online) and falls back to
// the copy kept here; the page's own files are kept at install. The bundle's large files are
// also kept by the bedside package itself (Cache API), which serves them without asking.
// Bump with every change to the page's files; activation deletes the caches of other versions.
const CACHE = "bedside-demo-v12";
const SHELL = [
  "./",
  "index.html",
  "app.js",
  "charts.js",
  "style.css",
  "smart.json",
  "samples/samples.json",
  "model/manifest.json",
  "mortality/manifest.json",
  "pkg/bedside.js",
  "pkg/errors.js",
  "pkg/instance.js",
  "pkg/backend.js",
  "pkg/download.js",
  "pkg/cache.js",
  "pkg/fhir.js",
  "pkg/smart.js",
  "pkg/wasm/bedside.js",
  "pkg/wasm/bedside_bg.wasm",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((n) => n.startsWith("bedside-demo-") && n !== CACHE).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  // a chart read with a token (a FHIR server behind this host) is never kept
  if (request.headers.has("Authorization")) return;
  // a page is kept under its path alone: an EHR sign-in's code and state, or a launch's iss and
  // launch id, never reach the cache
  const key = request.mode === "navigate" ? new Request(new URL(url.pathname, url).href) : request;
  event.respondWith(
    fetch(request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          event.waitUntil(caches.open(CACHE).then((cache) => cache.put(key, copy)));
        }
        return response;
      })
      .catch(async () => (await caches.match(key, { ignoreSearch: true })) ?? Response.error()),
  );
});
