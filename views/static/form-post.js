// Auto-submits the OAuth form_post response (RFC "OAuth 2.0 Form Post Response Mode").
// Kept external because the Content-Security-Policy forbids inline script; without
// JavaScript the visible "Continue" button does the same.
document.addEventListener('DOMContentLoaded', function () {
  var form = document.forms[0];
  if (form) form.submit();
});
