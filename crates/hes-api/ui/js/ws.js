// Live updates over /api/v1/ws: one socket for the whole app, reconnect with backoff, and a
// subscription that pages replace when they mount ({"subscribe": {...}} replaces the previous one).
import { accessToken } from './api.js';

const listeners = new Map(); // type -> Set<fn>
const stateListeners = new Set();
let socket = null;
let wanted = false;
let subscription = { fleet: true };
let backoff = 1000;
let retryTimer = 0;
let state = 'closed';

function setState(s) { state = s; for (const fn of stateListeners) fn(s); }
export function liveState() { return state; }
export function onLiveState(fn) { stateListeners.add(fn); fn(state); return () => stateListeners.delete(fn); }

/** Listen to one message type ("stats", "reading", "event", "job") or "*". Returns the unsubscribe. */
export function onLive(type, fn) {
  if (!listeners.has(type)) listeners.set(type, new Set());
  listeners.get(type).add(fn);
  return () => listeners.get(type).delete(fn);
}

function dispatch(msg) {
  for (const key of [msg.type, '*']) {
    const set = listeners.get(key);
    if (set) for (const fn of set) { try { fn(msg); } catch (e) { console.warn('live listener', e); } }
  }
}

function sendSubscription() {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ subscribe: subscription }));
}

/** Replace the subscription, e.g. {fleet: true} or {meters: ["m1"], fleet: true}. */
export function subscribe(sub) {
  subscription = sub;
  sendSubscription();
}

export function connect() {
  wanted = true;
  if (socket && (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING)) return;
  const token = accessToken();
  if (!token) return;
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  setState('connecting');
  let ws;
  try {
    ws = new WebSocket(`${proto}//${location.host}/api/v1/ws?access_token=${encodeURIComponent(token)}`);
  } catch { scheduleRetry(); return; }
  socket = ws;
  ws.onopen = () => { backoff = 1000; setState('open'); sendSubscription(); };
  ws.onmessage = (ev) => {
    let msg;
    try { msg = JSON.parse(ev.data); } catch { return; }
    if (msg && typeof msg.type === 'string') dispatch(msg);
  };
  ws.onclose = () => {
    if (socket === ws) socket = null;
    setState('closed');
    if (wanted) scheduleRetry();
  };
  ws.onerror = () => { /* onclose follows */ };
}

function scheduleRetry() {
  clearTimeout(retryTimer);
  setState('connecting');
  retryTimer = setTimeout(connect, backoff);
  backoff = Math.min(backoff * 2, 30000);
}

/** Reconnect with a fresh access token (after a refresh the old one will expire). */
export function reconnect() {
  if (!wanted) return;
  const old = socket;
  socket = null;
  if (old) { old.onclose = null; old.close(); }
  backoff = 1000;
  connect();
}

export function disconnect() {
  wanted = false;
  clearTimeout(retryTimer);
  if (socket) { socket.onclose = null; socket.close(); socket = null; }
  setState('closed');
}
