// Unlocks a password-protected share: the server answers with a share token and sets it as an
// HttpOnly cookie for this page's path, so reloading shows the insight.
(function () {
  "use strict";
  var form = document.getElementById("unlock-form");
  var error = document.getElementById("unlock-error");
  var submit = document.getElementById("unlock-submit");
  if (!form || !window.fetch) {
    return; // the plain form post still works
  }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    error.textContent = "";
    submit.disabled = true;
    fetch(window.location.pathname, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ password: form.elements.password.value }),
    })
      .then(function (response) {
        if (response.ok) {
          window.location.reload();
          return null;
        }
        return response.json().then(function (body) {
          error.textContent = (body && body.error) || "Something went wrong. Please try again.";
        });
      })
      .catch(function () {
        error.textContent = "Something went wrong. Please try again.";
      })
      .finally(function () {
        submit.disabled = false;
      });
  });
})();
