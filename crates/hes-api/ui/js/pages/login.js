// Sign in: username and password for an access and a refresh token.
import { login, describeError } from '../api.js';
import { h, field } from '../ui.js';

export function render(root) {
  const user = h('input', { name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' });
  const pass = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const msg = h('div', { 'aria-live': 'assertive' });
  const notice = sessionStorage.getItem('hes.notice');
  if (notice) { msg.append(h('div', { class: 'alert info' }, notice)); sessionStorage.removeItem('hes.notice'); }
  const submit = h('button', { class: 'btn btn-primary', type: 'submit' }, 'Sign in');
  const form = h('form', { class: 'panel', novalidate: true },
    field('Username', user), field('Password', pass), msg, submit);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    msg.replaceChildren();
    if (!user.value || !pass.value) {
      msg.append(h('div', { class: 'alert error', role: 'alert' }, 'Enter your username and password.'));
      (user.value ? pass : user).focus();
      return;
    }
    submit.disabled = true; submit.textContent = 'Signing in…';
    try {
      await login(user.value.trim(), pass.value);
      location.hash = '#/';
    } catch (e) {
      const text = e.status === 401 ? 'Wrong username or password.' : describeError(e);
      msg.append(h('div', { class: 'alert error', role: 'alert' }, text));
      pass.select();
    } finally { submit.disabled = false; submit.textContent = 'Sign in'; }
  });
  root.append(h('section', { class: 'login' },
    h('h1', {}, h('img', { src: '/icons/icon.svg', alt: '', width: 36, height: 36 }), 'Head-end system'),
    h('p', { class: 'muted' }, 'Sign in to see the fleet, its meters and alarms.'),
    form));
  user.focus();
}
