// Passkeys (WebAuthn) for the forms marked data-passkey="create" (add one) or "get" (use one).
// Kept external because the Content-Security-Policy forbids inline script. On submit: the
// options are fetched from data-options (a POST carrying the form's CSRF token; the server keeps
// the challenge), the browser asks the authenticator, and the form is submitted with the
// credential's JSON in its hidden "credential" field. Without WebAuthn the error line shows.
(function () {
  'use strict';

  function fail(form) {
    var line = form.querySelector('.passkey-error');
    if (line) line.hidden = false;
    var button = form.querySelector('button[type="submit"]');
    if (button) button.disabled = false;
  }

  async function run(form) {
    var kind = form.getAttribute('data-passkey');
    var csrf = form.querySelector('input[name="csrf"]').value;
    var response = await fetch(form.getAttribute('data-options'), {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ csrf: csrf }).toString(),
    });
    if (!response.ok) throw new Error('options refused');
    var json = await response.json();
    var credential =
      kind === 'create'
        ? await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(json) })
        : await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(json) });
    if (!credential) throw new Error('no credential');
    form.querySelector('input[name="credential"]').value = JSON.stringify(credential.toJSON());
    form.submit();
  }

  document.addEventListener('DOMContentLoaded', function () {
    var forms = document.querySelectorAll('form[data-passkey]');
    for (var i = 0; i < forms.length; i++) {
      forms[i].addEventListener('submit', function (event) {
        var form = event.currentTarget;
        event.preventDefault();
        var line = form.querySelector('.passkey-error');
        if (line) line.hidden = true;
        var button = form.querySelector('button[type="submit"]');
        if (button) button.disabled = true;
        if (!window.PublicKeyCredential || !PublicKeyCredential.parseCreationOptionsFromJSON) return fail(form);
        run(form).catch(function () {
          fail(form);
        });
      });
    }
  });
})();
