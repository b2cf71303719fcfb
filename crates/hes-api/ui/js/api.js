// The REST client: the session (tokens in memory, mirrored to sessionStorage so a reload keeps
// it), refresh before expiry, and problem+json errors as ApiError. See /work/notes/api-contract.md.

const STORE_KEY = 'hes.session';
const REFRESH_MARGIN_S = 60;

let session = null; // { access_token, refresh_token, expires_at (ms), user: {username, role, groups} }
let refreshTimer = 0;
let refreshing = null;
const authListeners = new Set();

export class ApiError extends Error {
  constructor(status, title, detail, body) {
    super(detail || title || `HTTP ${status}`);
    this.status = status;
    this.title = title || '';
    this.detail = detail || '';
    this.body = body;
  }
}

/** A sentence an operator can act on. */
export function describeError(e) {
  if (!(e instanceof ApiError)) return e && e.message ? e.message : String(e);
  const what = e.detail || e.title;
  switch (e.status) {
    case 0: return 'Cannot reach the server. Check the connection and try again.';
    case 401: return what ? `Not signed in: ${what}` : 'Your session has ended. Please sign in again.';
    case 403: return `Not allowed: ${what || 'your role may not do this.'}`;
    case 404: return `Not found${what ? `: ${what}` : '.'}`;
    case 409: return `Conflict: ${what}`;
    case 429: return `Too many attempts. ${what || 'Wait a minute and try again.'}`;
    default: return e.status >= 500 ? `Server error (${e.status}): ${what || 'try again later.'}` : `${what || 'Request failed'} (${e.status})`;
  }
}

export function onAuthChange(fn) { authListeners.add(fn); return () => authListeners.delete(fn); }
function emitAuth(reason) { for (const fn of authListeners) fn(session, reason); }

export function currentUser() { return session && session.user; }
export function accessToken() { return session && session.access_token; }
export function hasRole(...roles) { const u = currentUser(); return !!u && roles.includes(u.role); }
/** Operators and admins may send commands and acknowledge alarms. */
export function canOperate() { return hasRole('admin', 'operator'); }

function save() {
  try {
    if (session) sessionStorage.setItem(STORE_KEY, JSON.stringify(session));
    else sessionStorage.removeItem(STORE_KEY);
  } catch { /* private mode: memory only */ }
}

function setTokens(t) {
  const expiresIn = Number(t.expires_in) || 900;
  session = {
    ...(session || {}),
    access_token: t.access_token,
    refresh_token: t.refresh_token || (session && session.refresh_token),
    expires_at: Date.now() + expiresIn * 1000,
  };
  save();
  scheduleRefresh();
}

function scheduleRefresh() {
  clearTimeout(refreshTimer);
  if (!session || !session.refresh_token) return;
  const wait = Math.max(5000, session.expires_at - Date.now() - REFRESH_MARGIN_S * 1000);
  refreshTimer = setTimeout(() => { refresh().catch(() => {}); }, wait);
}

/** Restore the session of this tab; refreshes at once if the access token is (nearly) expired. */
export async function restoreSession() {
  try { session = JSON.parse(sessionStorage.getItem(STORE_KEY) || 'null'); } catch { session = null; }
  if (!session || !session.access_token) { session = null; return null; }
  if (session.expires_at - Date.now() < REFRESH_MARGIN_S * 1000) {
    try { await refresh(); } catch { return null; }
  } else scheduleRefresh();
  return session;
}

export async function login(username, password) {
  const t = await request('POST', '/api/v1/auth/token', { body: { username, password }, auth: false });
  session = null;
  setTokens(t);
  try {
    session.user = await request('GET', '/api/v1/me');
  } catch (e) { logout(); throw e; }
  save();
  emitAuth('login');
  return session.user;
}

export function logout(reason = 'logout') {
  clearTimeout(refreshTimer);
  // Signing out ends the session on the server too: the refresh token stops working.
  if (reason === 'logout' && session && session.refresh_token) {
    fetch('/api/v1/auth/logout', {
      method: 'POST', cache: 'no-store', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ refresh_token: session.refresh_token }),
    }).catch(() => { /* the token expires anyway */ });
  }
  const had = !!session;
  session = null;
  save();
  if (had) emitAuth(reason);
}

/** One refresh at a time; the refresh token rotates on use. */
export function refresh() {
  if (refreshing) return refreshing;
  if (!session || !session.refresh_token) return Promise.reject(new ApiError(401, 'No session'));
  refreshing = (async () => {
    try {
      const t = await request('POST', '/api/v1/auth/refresh', { body: { refresh_token: session.refresh_token }, auth: false });
      setTokens(t);
      emitAuth('refresh');
    } catch (e) {
      if (e instanceof ApiError && (e.status === 401 || e.status === 400)) logout('expired');
      else scheduleRefresh();
      throw e;
    } finally { refreshing = null; }
  })();
  return refreshing;
}

function qs(query) {
  if (!query) return '';
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}

export async function request(method, path, { body, query, auth = true, retry = true, text = false, signal } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = typeof body === 'string' ? 'text/csv' : 'application/json';
  if (auth) {
    if (session && session.expires_at - Date.now() < 5000 && session.refresh_token) { try { await refresh(); } catch { /* below */ } }
    if (!session) throw new ApiError(401, 'Not signed in');
    headers.Authorization = `Bearer ${session.access_token}`;
  }
  let res;
  try {
    res = await fetch(path + qs(query), {
      method, headers, signal, cache: 'no-store',
      body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)),
    });
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, 'Network error', e && e.message);
  }
  if (res.status === 401 && auth && retry && session && session.refresh_token) {
    try { await refresh(); } catch { throw new ApiError(401, 'Session expired', 'Please sign in again.'); }
    return request(method, path, { body, query, auth, retry: false, text, signal });
  }
  const type = res.headers.get('content-type') || '';
  if (!res.ok) {
    let problem = null;
    try { problem = type.includes('json') ? await res.json() : { detail: (await res.text()).slice(0, 300) }; } catch { /* empty */ }
    if (res.status === 401 && auth) logout('expired');
    throw new ApiError(res.status, problem && problem.title, problem && problem.detail, problem);
  }
  if (res.status === 204) return null;
  if (text) return res.text();
  if (type.includes('json')) return res.json();
  const t = await res.text();
  try { return JSON.parse(t); } catch { return t; }
}

export const get = (path, query, opts) => request('GET', path, { ...opts, query });
export const post = (path, body, opts) => request('POST', path, { ...opts, body: body === undefined ? {} : body });
export const patch = (path, body, opts) => request('PATCH', path, { ...opts, body });
export const del = (path, opts) => request('DELETE', path, opts);

/** Path segment escaping for ids that may contain anything. */
export const seg = (s) => encodeURIComponent(String(s));
