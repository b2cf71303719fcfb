// Administration: users (create, change role, delete), API tokens (create, shown once; revoke),
// and the audit log.
import { get, post, patch, del, seg, currentUser, describeError } from '../api.js';
import { h, field, select, table, pager, timeEl, pill, errorBox, toast, confirmDialog } from '../ui.js';

const ROLES = [['viewer', 'Viewer'], ['operator', 'Operator'], ['integrator', 'Integrator'], ['admin', 'Admin']];
const splitList = (s) => s.split(',').map((x) => x.trim()).filter(Boolean);

export function render(root) {
  const usersBox = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const tokensBox = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const auditBox = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const me = currentUser();

  // ---- users ----
  const uName = h('input', { name: 'username', required: true, autocomplete: 'off', autocapitalize: 'none' });
  const uPass = h('input', { name: 'password', type: 'password', required: true, autocomplete: 'new-password', minlength: 8 });
  const uRole = select('role', ROLES, 'viewer');
  const uGroups = h('input', { name: 'groups', placeholder: 'cell=cell-3, region=north (empty: all)' });
  const uMsg = h('div', { 'aria-live': 'polite' });
  const userForm = h('form', { class: 'filters', style: 'margin-top:12px' },
    field('Username', uName), field('Password', uPass), field('Role', uRole), field('Groups', uGroups, 'grow'),
    h('div', { class: 'field' }, h('button', { class: 'btn btn-primary', type: 'submit' }, 'Add user')));
  userForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    uMsg.replaceChildren();
    if (!uName.value.trim() || uPass.value.length < 8) { uMsg.append(h('div', { class: 'alert error', role: 'alert' }, 'A username and a password of at least 8 characters are needed.')); return; }
    try {
      await post('/api/v1/users', { username: uName.value.trim(), password: uPass.value, role: uRole.value, groups: splitList(uGroups.value) });
      toast(`User ${uName.value.trim()} added`);
      userForm.reset();
      loadUsers();
    } catch (e) { uMsg.append(errorBox(e)); }
  });

  async function loadUsers() {
    try {
      const r = await get('/api/v1/users', { limit: 1000 });
      usersBox.replaceChildren(table([
        { label: 'User', cell: (u) => h('b', {}, u.username) },
        { label: 'Role', cell: (u) => {
          const s = select('role', ROLES, u.role);
          s.setAttribute('aria-label', `Role of ${u.username}`);
          s.disabled = me && u.username === me.username;
          s.addEventListener('change', async () => {
            try { await patch(`/api/v1/users/${seg(u.username)}`, { role: s.value }); toast(`${u.username} is now ${s.value}`); }
            catch (e) { toast(describeError(e), 'error'); s.value = u.role; }
          });
          return s;
        } },
        { label: 'Groups', cell: (u) => ((u.groups || []).length ? u.groups.join(', ') : h('span', { class: 'muted' }, 'all')) },
        { label: 'Created', cell: (u) => timeEl(u.created_at) },
        { label: '', cell: (u) => h('div', { class: 'row-actions' }, h('button', {
          class: 'btn btn-sm', type: 'button', disabled: me && u.username === me.username, 'aria-label': `Delete user ${u.username}`,
          onclick: async () => {
            if (!await confirmDialog({ title: `Delete ${u.username}?`, body: 'The user can no longer sign in.', confirm: 'Delete', danger: true })) return;
            try { await del(`/api/v1/users/${seg(u.username)}`); toast(`${u.username} deleted`); loadUsers(); } catch (e) { toast(describeError(e), 'error'); }
          },
        }, 'Delete')) },
      ], r.items || [], { empty: 'No users.', caption: 'Users' }));
    } catch (e) { usersBox.replaceChildren(errorBox(e)); }
  }

  // ---- tokens ----
  const tName = h('input', { name: 'name', required: true, autocomplete: 'off' });
  const tRole = select('role', ROLES, 'integrator');
  const tScopes = h('input', { name: 'scopes', placeholder: 'readings:read, events:read' });
  const tDays = h('input', { name: 'expires_in_days', type: 'number', min: 1, max: 3650, value: '90' });
  const tMsg = h('div', { 'aria-live': 'polite' });
  const tokenForm = h('form', { class: 'filters', style: 'margin-top:12px' },
    field('Name', tName), field('Role', tRole), field('Scopes', tScopes, 'grow'), field('Expires in (days)', tDays),
    h('div', { class: 'field' }, h('button', { class: 'btn btn-primary', type: 'submit' }, 'Create token')));
  tokenForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    tMsg.replaceChildren();
    if (!tName.value.trim()) { tMsg.append(h('div', { class: 'alert error', role: 'alert' }, 'Give the token a name.')); return; }
    try {
      const r = await post('/api/v1/tokens', { name: tName.value.trim(), role: tRole.value, scopes: splitList(tScopes.value), expires_in_days: Number(tDays.value) || 90 });
      const secret = r.secret ?? r.token ?? r.access_token ?? '';
      const copy = h('button', { class: 'btn btn-sm', type: 'button', onclick: () => navigator.clipboard && navigator.clipboard.writeText(secret).then(() => toast('Copied')) }, 'Copy');
      tMsg.append(h('div', { class: 'alert info' }, h('p', { style: 'margin:0 0 6px' }, h('b', {}, 'Copy this token now: it is shown only once.')), h('div', { class: 'secret' }, secret), h('div', { style: 'margin-top:6px' }, copy)));
      tokenForm.reset();
      tDays.value = '90';
      loadTokens();
    } catch (e) { tMsg.append(errorBox(e)); }
  });

  async function loadTokens() {
    try {
      const r = await get('/api/v1/tokens', { limit: 1000 });
      tokensBox.replaceChildren(table([
        { label: 'Name', cell: (t) => h('b', {}, t.name) },
        { label: 'Role', cell: (t) => t.role },
        { label: 'Scopes', cell: (t) => ((t.scopes || []).join(', ') || '–') },
        { label: 'Expires', cell: (t) => timeEl(t.expires_at) },
        { label: 'State', cell: (t) => (t.revoked || t.revoked_at ? pill('revoked', 'bad') : pill('active', 'ok')) },
        { label: '', cell: (t) => (t.revoked || t.revoked_at ? '' : h('div', { class: 'row-actions' }, h('button', {
          class: 'btn btn-sm', type: 'button', 'aria-label': `Revoke token ${t.name}`,
          onclick: async () => {
            if (!await confirmDialog({ title: `Revoke ${t.name}?`, body: 'Integrations using this token stop working at once.', confirm: 'Revoke', danger: true })) return;
            try { await del(`/api/v1/tokens/${seg(t.id)}`); toast(`${t.name} revoked`); loadTokens(); } catch (e) { toast(describeError(e), 'error'); }
          },
        }, 'Revoke'))) },
      ], r.items || [], { empty: 'No API tokens.', caption: 'API tokens' }));
    } catch (e) { tokensBox.replaceChildren(errorBox(e)); }
  }

  // ---- audit ----
  let auditOffset = 0;
  async function loadAudit() {
    try {
      const r = await get('/api/v1/audit', { limit: 20, offset: auditOffset });
      auditBox.replaceChildren(table([
        { label: 'Time', cell: (a) => timeEl(a.time) },
        { label: 'Actor', cell: (a) => a.actor },
        { label: 'Action', cell: (a) => h('span', { class: 'mono' }, a.action) },
        { label: 'Target', cell: (a) => a.target || '–' },
        { label: 'Detail', cell: (a) => (typeof a.detail === 'string' ? a.detail : a.detail ? JSON.stringify(a.detail) : '–') },
      ], r.items || [], { empty: 'The audit log is empty.', caption: 'Audit log' }),
      pager({ total: r.total, limit: r.limit || 20, offset: r.offset || 0 }, (o) => { auditOffset = o; loadAudit(); }));
    } catch (e) { auditBox.replaceChildren(errorBox(e)); }
  }

  root.append(
    h('div', { class: 'page-head' }, h('h1', {}, 'Users and tokens')),
    h('section', { class: 'panel', 'aria-labelledby': 'h-users' }, h('h2', { id: 'h-users' }, 'Users'), usersBox, userForm, uMsg),
    h('section', { class: 'panel', 'aria-labelledby': 'h-tokens' }, h('h2', { id: 'h-tokens' }, 'API tokens'), tokensBox, tokenForm, tMsg),
    h('section', { class: 'panel', 'aria-labelledby': 'h-audit' }, h('h2', { id: 'h-audit' }, 'Audit log'), auditBox));
  loadUsers(); loadTokens(); loadAudit();
  return () => {};
}
