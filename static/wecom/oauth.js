// The end of a WeCom OAuth login in the browser. WeCom sends the browser to the callback with a
// one-time code and state in the address; the callback answers this page to a navigation, and
// this script asks the same URL for the session as JSON, so the token stays out of every URL,
// the history and any Referer. The token goes where the landing page reads it.
import { api, errorText } from "/static/common/api.js";

const CALLBACK = "/wecom/oauth/callback";
// The staff console reads "suban.staff.token"; a member's session works on the mini-program's
// routes, which the H5 preview calls with "suban.h5.token".
const TOKEN_KEYS = { staff: "suban.staff.token", member: "suban.h5.token" };
const $ = (id) => document.getElementById(id);

// The server only hands out same-site paths (oauth.safe_next); this is the browser's own check
// that a changed answer cannot send the token's owner off site: "//host" and "/\host" are other
// hosts to a browser.
// Browsers drop tabs and newlines from URLs ("/\t/host" is "//host"): no control characters
// either, and the resolved URL must stay on this origin.
function isLocalPath(next) {
  if (typeof next !== "string" || !next.startsWith("/") || next.startsWith("//")) return false;
  if (next.includes("\\") || /[\u0000-\u001f\u007f]/.test(next)) return false;
  return new URL(next, location.origin).origin === location.origin;
}

function fail(message) {
  $("bridge-progress").hidden = true;
  $("bridge-failed").hidden = false;
  $("bridge-error").textContent = message;
}

async function finish() {
  const params = new URLSearchParams(location.search);
  const code = params.get("code");
  const state = params.get("state");
  // Out of the address bar and the history at once: both are single use, and a reload should
  // not try them again.
  history.replaceState(null, "", location.pathname);
  if (!code || !state) {
    fail("登录链接不完整或已失效，请重新登录");
    return;
  }
  let answer;
  try {
    answer = await api(`${CALLBACK}?${new URLSearchParams({ code, state })}`, {
      headers: { Accept: "application/json" },
    });
  } catch (err) {
    fail(errorText(err));
    return;
  }
  if (!answer || !answer.token || !isLocalPath(answer.next)) {
    fail("登录结果无法识别，请重新登录");
    return;
  }
  // Only a staff login answers with roles.
  const key = Array.isArray(answer.roles) ? TOKEN_KEYS.staff : TOKEN_KEYS.member;
  sessionStorage.setItem(key, answer.token);
  location.replace(answer.next);
}

finish();
