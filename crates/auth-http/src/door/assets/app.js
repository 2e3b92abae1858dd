//! The sign-in page's script (spec §10, decision 0006): it walks the steps of a login through the
//! public API (`/api/2.0/authentication`, `setphone`, `sendsms`, `{code}`, `people/@self`, `logout`)
//! exactly as any client does, keeping the typed password (or, back from a social provider, its
//! code and PKCE verifier) in memory only, as the API asks for them on every step. It never stores
//! anything; the API's `asc_auth_key` cookie is the session.
"use strict";

(function () {
  const app = document.getElementById("app");
  if (!app) return;
  const $ = (id) => document.getElementById(id);
  const steps = [
    "step-password", "step-phone", "step-sms", "step-totp", "step-forgot", "step-reset", "signed-in",
  ];
  // Checked by the server against the portal's host names; absent when there is nowhere to go back to.
  const returnTo = app.dataset.return || null;
  // The portal's resend cool-down: the API refuses `sendsms` sooner.
  const RESEND_COOLDOWN_SECS = Number(app.dataset.resendSecs) || 30;

  // { userName, password } or { provider, codeOAuth, codeVerifier } while a login is under way.
  let login = null;
  let resendTimer = null;

  function message(key, seconds) {
    const el = document.querySelector('#messages [data-key="' + key + '"]') ||
      document.querySelector('#messages [data-key="other"]');
    const text = el ? el.textContent : key;
    return seconds === undefined ? text : text.replace("{s}", String(seconds));
  }

  function showError(key) {
    const box = $("error");
    box.textContent = message(key);
    box.hidden = false;
    $("notice").hidden = true;
  }

  function showNotice(key) {
    const box = $("notice");
    box.textContent = message(key);
    box.hidden = false;
  }

  function clearMessages() {
    $("error").hidden = true;
    $("notice").hidden = true;
  }

  function show(step) {
    for (const id of steps) $(id).hidden = id !== step;
    $("restart").hidden = step === "step-password" || step === "signed-in";
    const first = $(step).querySelector("input");
    if (first) first.focus();
  }

  function busy(form, on) {
    for (const b of form.querySelectorAll("button")) {
      if (b.id !== "resend") b.disabled = on;
    }
  }

  /// One API call: JSON in, the envelope out, `{ ok, status, response, code }`.
  async function api(method, path, body) {
    const init = {
      method,
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let r;
    try {
      r = await fetch(path, init);
    } catch (e) {
      return { ok: false, status: 0, code: "network" };
    }
    let envelope = null;
    try {
      envelope = await r.json();
    } catch (e) {
      envelope = null;
    }
    if (r.ok && envelope && envelope.status === 0) {
      return { ok: true, status: r.status, response: envelope.response };
    }
    const code = envelope && envelope.error && envelope.error.code ? envelope.error.code : "other";
    return { ok: false, status: r.status, code };
  }

  function credentials(extra) {
    const base = login.provider
      ? { provider: login.provider, codeOAuth: login.codeOAuth, codeVerifier: login.codeVerifier }
      : { userName: login.userName, password: login.password };
    return Object.assign(base, extra || {});
  }

  async function signedIn() {
    login = null;
    if (returnTo) {
      window.location.assign(returnTo);
      return;
    }
    const me = await api("GET", "/api/2.0/people/@self");
    $("who").textContent = me.ok ? me.response.displayName + " (" + me.response.email + ")" : "";
    clearMessages();
    show("signed-in");
  }

  function startResendCooldown() {
    const button = $("resend");
    const wait = $("resend-wait");
    let left = RESEND_COOLDOWN_SECS;
    button.disabled = true;
    clearInterval(resendTimer);
    const tick = () => {
      if (left <= 0) {
        clearInterval(resendTimer);
        button.disabled = false;
        wait.textContent = "";
        return;
      }
      wait.textContent = message("resend_in", left);
      left -= 1;
    };
    tick();
    resendTimer = setInterval(tick, 1000);
  }

  async function showTotp(tfaKey) {
    const qr = $("qr");
    qr.replaceChildren();
    $("totp-enrol-intro").hidden = !tfaKey;
    $("totp-intro").hidden = !!tfaKey;
    if (tfaKey) {
      // The server draws the QR code of the otpauth:// URI; POST keeps the key out of any URL.
      const form = new URLSearchParams({ account: login.userName || login.provider, key: tfaKey });
      try {
        const r = await fetch("/login/totp", {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/x-www-form-urlencoded" },
          body: form.toString(),
        });
        if (r.ok) {
          const doc = new DOMParser().parseFromString(await r.text(), "text/html");
          qr.replaceChildren(...Array.from(doc.body.childNodes, (n) => document.importNode(n, true)));
        }
      } catch (e) {
        showError("network");
      }
    }
    show("step-totp");
  }

  /// What step 1 (or setphone / sendsms) answered: a token, or the second factor to ask for.
  async function next(result, codeStep) {
    if (!result.ok) {
      showError(result.code === "invalid_credentials" && codeStep ? "invalid_code" : result.code);
      return;
    }
    const r = result.response;
    clearMessages();
    if (r.token) {
      await signedIn();
    } else if (r.sms && !r.phoneNoise) {
      show("step-phone");
    } else if (r.sms) {
      $("phone-noise").textContent = r.phoneNoise;
      $("sms-code").value = "";
      show("step-sms");
      startResendCooldown();
    } else if (r.tfa) {
      $("totp-code").value = "";
      await showTotp(r.tfaKey || null);
    } else {
      showError("other");
    }
  }

  async function submitCode(input) {
    // Backup codes may be typed with spaces or hyphens; the API ignores them, a URL must not carry spaces.
    const code = input.value.replace(/[\s-]/g, "");
    if (!code) {
      showError("bad_request");
      return;
    }
    const r = await api("POST", "/api/2.0/authentication/" + encodeURIComponent(code), credentials());
    await next(r, true);
  }

  function onSubmit(id, handler) {
    const form = $(id);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      busy(form, true);
      try {
        await handler(form);
      } finally {
        busy(form, false);
      }
    });
  }

  onSubmit("step-password", async () => {
    const userName = $("email").value.trim();
    const password = $("password").value;
    if (!userName || !password) {
      showError("bad_request");
      return;
    }
    login = { userName, password };
    $("password").value = "";
    const r = await api("POST", "/api/2.0/authentication", credentials());
    if (!r.ok) login = null;
    await next(r, false);
  });

  onSubmit("step-phone", async () => {
    const mobilePhone = $("phone").value.trim();
    if (!mobilePhone) {
      showError("phone_required");
      return;
    }
    await next(await api("POST", "/api/2.0/authentication/setphone", credentials({ mobilePhone })), false);
  });

  onSubmit("step-sms", async () => submitCode($("sms-code")));
  onSubmit("step-totp", async () => submitCode($("totp-code")));

  $("resend").addEventListener("click", async () => {
    const r = await api("POST", "/api/2.0/authentication/sendsms", credentials());
    if (r.ok) {
      clearMessages();
      showNotice("sent");
      startResendCooldown();
    } else {
      showError(r.code);
    }
  });

  $("logout").addEventListener("click", async () => {
    await api("POST", "/api/2.0/authentication/logout");
    clearMessages();
    show("step-password");
  });

  $("restart").addEventListener("click", (event) => {
    event.preventDefault();
    login = null;
    clearInterval(resendTimer);
    clearMessages();
    show("step-password");
  });

  // A social button: off to the provider through the server, which keeps `state` and PKCE.
  for (const button of document.querySelectorAll("[data-provider]")) {
    button.addEventListener("click", () => {
      let url = "/login/oauth/start?provider=" + encodeURIComponent(button.dataset.provider);
      if (returnTo) url += "&return=" + encodeURIComponent(returnTo);
      window.location.assign(url);
    });
  }

  // Forgotten password: the API answers alike whether or not the address is anyone's.
  $("forgot").addEventListener("click", (event) => {
    event.preventDefault();
    clearMessages();
    $("forgot-email").value = $("email").value.trim();
    show("step-forgot");
  });

  onSubmit("step-forgot", async () => {
    const email = $("forgot-email").value.trim();
    if (!email) {
      showError("bad_request");
      return;
    }
    const r = await api("POST", "/api/2.0/people/password", { email });
    if (r.ok) {
      show("step-password");
      showNotice("reset_sent");
    } else {
      showError(r.code);
    }
  });

  if (app.dataset.mode === "reset") {
    // The key is single-use: read it once, then keep it out of the address bar and the history.
    const key = new URLSearchParams(window.location.search).get("key") || "";
    window.history.replaceState(null, "", "/login/reset");
    onSubmit("step-reset", async () => {
      const password = $("new-password").value;
      if (!password) {
        showError("bad_request");
        return;
      }
      if (password !== $("repeat-password").value) {
        showError("mismatch");
        return;
      }
      const r = await api("PUT", "/api/2.0/people/password", { key, password });
      if (r.ok) {
        $("new-password").value = "";
        $("repeat-password").value = "";
        show("step-password");
        showNotice("reset_done");
      } else {
        showError(r.code);
      }
    });
    show("step-reset");
    if (!key) showError("invalid_reset_key");
    return;
  }

  if (app.dataset.error) showError(app.dataset.error);

  // Back from a provider: the code goes to the API like any client's `codeOAuth`.
  if (app.dataset.oauthProvider) {
    login = {
      provider: app.dataset.oauthProvider,
      codeOAuth: app.dataset.oauthCode,
      codeVerifier: app.dataset.oauthVerifier,
    };
    // The code is single-use: a reload must not send it again, nor keep it in the history.
    window.history.replaceState(null, "", "/login");
    (async () => {
      const r = await api("POST", "/api/2.0/authentication", credentials());
      if (!r.ok) {
        login = null;
        show("step-password");
        showError(r.code === "invalid_credentials" ? "oauth_failed" : r.code);
        return;
      }
      await next(r, false);
    })();
    return;
  }

  // Already signed in: go back at once, or say who.
  (async () => {
    const me = await api("GET", "/api/2.0/people/@self");
    if (me.ok) {
      if (returnTo) {
        window.location.assign(returnTo);
        return;
      }
      $("who").textContent = me.response.displayName + " (" + me.response.email + ")";
      show("signed-in");
    } else {
      show("step-password");
    }
  })();
})();
