// The dashboard's shell: login with an API key (admin token or a user's key), who is logged in
// (GET /v1/me), and a hash router: #/ the fleet, #/devices/<id> a device.
import { api, ApiError, currentKey, forgetKey, useKey } from "./api.js";
import { h } from "./format.js";
import { mountFleet } from "./fleet.js";
import { mountDevice } from "./device.js";

const main = document.getElementById("main");
const who = document.getElementById("who");
let me = null;
let unmount = () => undefined;

function showLogin(message) {
  unmount();
  unmount = () => undefined;
  me = null;
  who.replaceChildren();
  const key = h("input", { id: "api-key", type: "password", autocomplete: "current-password", placeholder: "admin token or API key", required: true });
  const remember = h("input", { id: "remember", type: "checkbox", checked: true });
  const error = h("p.error", { id: "login-error" }, message ?? "");
  const form = h(
    "form.login",
    {
      onsubmit: async (e) => {
        e.preventDefault();
        useKey(key.value.trim(), remember.checked);
        error.textContent = "";
        await start().catch((err) => showLogin(err.message));
      },
    },
    h("h1", {}, "Sign in"),
    h("p", {}, "Use the admin token (printed by ", h("code", {}, "airtwin dev"), ") or a user's API key. It stays in this tab and is sent only in request headers."),
    h("label", { for: "api-key" }, "Key"),
    key,
    h("label.check", {}, remember, " remember in this tab (until it closes)"),
    h("button", { type: "submit" }, "Sign in"),
    error,
  );
  main.replaceChildren(form);
  key.focus();
}

function signOut() {
  forgetKey();
  location.hash = "#/";
  showLogin();
}

function route() {
  if (me === null) return;
  unmount();
  const hash = location.hash.replace(/^#/, "") || "/";
  const device = /^\/devices\/([A-Za-z0-9_-]{1,64})$/.exec(hash);
  const ctx = { me, onDenied: () => showLogin("The key was refused; sign in again.") };
  unmount = device ? mountDevice(main, device[1], ctx) : mountFleet(main, ctx);
}

async function start() {
  if (currentKey() === null) return showLogin();
  try {
    me = await api("/v1/me");
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      forgetKey();
      return showLogin("That key is not valid.");
    }
    throw err;
  }
  who.replaceChildren(
    h("span", { id: "whoami" }, me.kind === "admin" ? "admin" : `user ${me.userId}`),
    h("button.link", { id: "sign-out", onclick: signOut }, "sign out"),
  );
  route();
}

window.addEventListener("hashchange", route);
start().catch((err) => showLogin(`Cannot reach the gateway: ${err.message}`));
