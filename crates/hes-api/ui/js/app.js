// The shell: hash router, session gate, navigation, live indicator, service worker.
import * as api from './api.js';
import * as live from './ws.js';
import { clear, h, setAlarmBadge } from './ui.js';
import * as loginPage from './pages/login.js';
import * as dashboardPage from './pages/dashboard.js';
import * as metersPage from './pages/meters.js';
import * as meterPage from './pages/meter.js';
import * as alarmsPage from './pages/alarms.js';
import * as jobsPage from './pages/jobs.js';
import * as adminPage from './pages/admin.js';

const ROUTES = [
  { re: /^\/?$/, page: dashboardPage, nav: 'dashboard', title: 'Dashboard' },
  { re: /^\/meters\/?$/, page: metersPage, nav: 'meters', title: 'Meters' },
  { re: /^\/meters\/(.+)$/, page: meterPage, nav: 'meters', title: 'Meter' },
  { re: /^\/alarms\/?$/, page: alarmsPage, nav: 'alarms', title: 'Alarms' },
  { re: /^\/jobs\/?$/, page: jobsPage, nav: 'jobs', title: 'Jobs' },
  { re: /^\/admin\/?$/, page: adminPage, nav: 'admin', title: 'Users and tokens', role: 'admin' },
];

const main = document.getElementById('main');
let cleanup = null;
let currentPath = null;

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/';
  return raw.split('?')[0];
}

async function render() {
  const path = parseHash();
  if (typeof cleanup === 'function') { try { cleanup(); } catch { /* ignore */ } }
  cleanup = null;
  const user = api.currentUser();
  const topbar = document.getElementById('topbar');
  if (path === '/login' || !user) {
    topbar.hidden = true;
    live.disconnect();
    if (path !== '/login') { location.replace('#/login'); return; }
    document.title = 'Sign in · HES';
    clear(main);
    cleanup = loginPage.render(main, {});
    currentPath = path;
    return;
  }
  topbar.hidden = false;
  live.connect();
  const route = ROUTES.find((r) => r.re.test(path));
  document.getElementById('nav').classList.remove('open');
  document.getElementById('nav-toggle').setAttribute('aria-expanded', 'false');
  for (const a of document.querySelectorAll('#nav a')) {
    if (route && a.dataset.nav === route.nav) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  clear(main);
  if (!route) {
    document.title = 'Not found · HES';
    main.append(h('h1', {}, 'Page not found'), h('p', {}, h('a', { href: '#/' }, 'Back to the dashboard')));
    return;
  }
  if (route.role && !api.hasRole(route.role)) {
    document.title = `${route.title} · HES`;
    main.append(h('h1', {}, route.title), h('div', { class: 'alert error', role: 'alert' }, `Not allowed: this page is for the ${route.role} role; you are signed in as ${user.role}.`));
    return;
  }
  document.title = `${route.title} · HES`;
  const params = path.match(route.re).slice(1).map(decodeURIComponent);
  live.subscribe({ fleet: true });
  cleanup = route.page.render(main, { params, user });
  if (currentPath !== path) main.focus({ preventScroll: true });
  currentPath = path;
}

function renderSession() {
  const u = api.currentUser();
  document.getElementById('who').textContent = u ? `${u.username} · ${u.role}` : '';
  for (const a of document.querySelectorAll('#nav [data-role]')) a.hidden = !(u && a.dataset.role === u.role);
}

function setupShell() {
  const toggle = document.getElementById('nav-toggle');
  toggle.addEventListener('click', () => {
    const nav = document.getElementById('nav');
    const open = !nav.classList.contains('open');
    nav.classList.toggle('open', open);
    toggle.setAttribute('aria-expanded', String(open));
  });
  document.getElementById('logout').addEventListener('click', () => { api.logout(); location.hash = '#/login'; });
  live.onLiveState((s) => {
    const el = document.getElementById('live');
    el.dataset.state = s;
    el.querySelector('.live-text').textContent = s === 'open' ? 'Live' : s === 'connecting' ? 'Connecting…' : 'Offline';
    el.title = s === 'open' ? 'Live updates on' : 'Live updates off: the page refreshes every few seconds';
  });
  // The open-alarms badge in the navigation follows the fleet statistics.
  live.onLive('stats', (m) => setAlarmBadge(m.data && m.data.alarms_open));
}

async function start() {
  setupShell();
  api.onAuthChange((s, reason) => {
    renderSession();
    if (!s) {
      live.disconnect();
      if (reason === 'expired') sessionStorage.setItem('hes.notice', 'Your session has ended. Please sign in again.');
      if (parseHash() !== '/login') location.hash = '#/login';
    }
  });
  await api.restoreSession();
  renderSession();
  window.addEventListener('hashchange', () => {
    const path = parseHash();
    if (path === currentPath && path !== '/login') {
      // Only the query changed (filters): the page handles it itself.
      window.dispatchEvent(new CustomEvent('hes:query'));
      return;
    }
    render();
  });
  render();
  if ('serviceWorker' in navigator && (location.protocol === 'https:' || location.hostname === 'localhost' || location.hostname === '127.0.0.1')) {
    navigator.serviceWorker.register('/sw.js', { scope: '/' }).catch(() => { /* not installable here */ });
  }
}

start();
