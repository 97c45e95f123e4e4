// What the three pages share: calling the JSON API, building DOM without innerHTML (form data
// is other people's input: it only ever becomes text), and dates in Beijing time.

export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    const error = (body && body.error) || {};
    super(error.message || `请求失败（HTTP ${status}）`);
    this.status = status;
    this.code = error.code || "HTTP_" + status;
    this.fields = error.fields || {};
    this.details = error;
    this.retryAfter = retryAfter;
  }
}

export async function api(path, { method = "GET", body, token, headers = {} } = {}) {
  const sent = { ...headers };
  if (token) sent.Authorization = `Bearer ${token}`;
  if (body !== undefined) sent["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, { error: { code: "NETWORK", message: "网络连接失败，请稍后重试" } });
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!response.ok) throw new ApiError(response.status, data, response.headers.get("Retry-After"));
  return data;
}

// The api() of a signed-in page: its current token on every call, and onExpired when the
// session is gone (401), wherever on the page that happens; the error is still thrown.
export function sessionApi(token, onExpired) {
  return async (path, options = {}) => {
    try {
      return await api(path, { ...options, token: token() });
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) onExpired();
      throw err;
    }
  };
}

export function errorText(err) {
  if (!(err instanceof ApiError)) return String(err && err.message ? err.message : err);
  const parts = Object.entries(err.fields || {}).map(([field, why]) => `${field}：${why}`);
  if (err.status === 429 && err.retryAfter) parts.push(`请 ${err.retryAfter} 秒后再试`);
  return parts.length ? `${err.message}（${parts.join("；")}）` : err.message;
}

// el("p", {class: "x", onclick: f}, "text", child) — attributes set as properties or attributes.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      node.className = value;
    } else if (key === "dataset") {
      Object.assign(node.dataset, value);
    } else if (value === true) {
      node.setAttribute(key, "");
    } else {
      node.setAttribute(key, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== undefined && c !== null));
}

const BEIJING = "Asia/Shanghai";

export function formatTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString("zh-CN", {
    timeZone: BEIJING,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    hour12: false,
  });
}

// "YYYY-MM-DD" and "YYYY-MM" of a moment in Beijing, whatever the browser's zone.
export function beijingDate(date = new Date(), days = 0) {
  const shifted = new Date(date.getTime() + days * 86400000);
  return new Intl.DateTimeFormat("en-CA", { timeZone: BEIJING }).format(shifted);
}

export function beijingMonth(date = new Date()) {
  return beijingDate(date).slice(0, 7);
}

export function statusLabel(status) {
  return STATUS_LABELS[status] || status;
}

export const STATUS_LABELS = {
  pending_internal: "待单位内部审批",
  submitted: "已提交",
  in_review: "审核中",
  approved: "已通过",
  rejected: "未通过",
  returned: "退回补正",
  completed: "已办结",
  withdrawn: "已撤回",
};

export const ACTOR_LABELS = {
  mp: "申请人",
  staff: "工作人员",
  wecom: "企业微信成员",
  system: "系统",
};

// A fresh key per filing attempt: resending the same attempt (a double click, a retry after a
// dropped answer) gets the same submission back instead of a second one.
export function newIdempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
