// The staff console: sign-in, the review queue, one submission and its decisions, slots and
// invitations, the comfort index, the audit log. Views follow the address's hash so the browser's
// back button and a reload keep the reviewer where they were.
import {
  ACTOR_LABELS,
  ApiError,
  STATUS_LABELS,
  api,
  beijingDate,
  beijingMonth,
  clear,
  el,
  errorText,
  formatTime,
  sessionApi,
  statusLabel,
} from "/static/common/api.js";

const TOKEN_KEY = "suban.staff.token";
const $ = (id) => document.getElementById(id);

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  me: null,
  halls: [],
  forms: [],
  queue: { status: "submitted", form_code: "", claimed: "", page: 1, pageSize: 20, total: 0 },
  submission: null,
  schema: new Map(),
};

// ---------------------------------------------------------------- session

// An expired or revoked session: back to the login form, wherever the reviewer was.
const call = sessionApi(
  () => state.token,
  () => signOutLocally("登录已过期，请重新登录"),
);

function signOutLocally(message) {
  state.token = null;
  state.me = null;
  sessionStorage.removeItem(TOKEN_KEY);
  showLogin(message);
}

function showLogin(message = "") {
  $("booting").hidden = true;
  $("app-view").hidden = true;
  $("who").hidden = true;
  $("login-view").hidden = false;
  $("login-error").textContent = message;
  $("login-username").focus();
}

async function onLogin(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const username = form.username.value.trim();
  const password = form.password.value;
  const otp = form.otp.value.trim();
  if (!username || !password) {
    $("login-error").textContent = "请填写用户名和密码";
    return;
  }
  $("login-submit").disabled = true;
  $("login-error").textContent = "";
  try {
    const body = { username, password };
    if (otp) body.otp = otp;
    const answer = await api("/api/v1/staff/login", { method: "POST", body });
    state.token = answer.token;
    sessionStorage.setItem(TOKEN_KEY, answer.token);
    form.password.value = "";
    form.otp.value = "";
    await enter();
  } catch (err) {
    $("login-error").textContent = errorText(err);
  } finally {
    $("login-submit").disabled = false;
  }
}

async function onLogout() {
  try {
    await call("/api/v1/staff/logout", { method: "POST" });
  } catch {
    // Signing out locally is what matters; the session expires on its own.
  }
  signOutLocally("已退出登录");
}

async function enter() {
  try {
    state.me = await call("/api/v1/staff/me");
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) showLogin(errorText(err));
    return;
  }
  $("booting").hidden = true;
  $("login-view").hidden = true;
  $("app-view").hidden = false;
  $("who").hidden = false;
  $("who-name").textContent = state.me.display_name || state.me.username;
  await loadReferenceData();
  route();
}

async function loadReferenceData() {
  const [forms, halls] = await Promise.allSettled([api("/api/v1/forms"), api("/api/v1/halls")]);
  state.forms = forms.status === "fulfilled" ? forms.value : [];
  state.halls = halls.status === "fulfilled" ? halls.value : [];
  const formSelect = $("filter-form");
  clear(
    formSelect,
    el("option", { value: "" }, "全部"),
    state.forms.map((f) => el("option", { value: f.code }, f.title)),
  );
  for (const id of ["slots-hall", "comfort-hall"]) {
    clear(
      $(id),
      state.halls.map((h) => el("option", { value: h.hall_id }, h.name)),
    );
  }
  fillCategories();
}

// ---------------------------------------------------------------- routing

const VIEWS = ["queue", "submission", "slots", "comfort", "audit"];

function route() {
  if (!state.token) return;
  const hash = location.hash.replace(/^#/, "") || "queue";
  const [name, arg] = hash.split("/");
  const view = VIEWS.includes(name) ? name : "queue";
  for (const v of VIEWS) $(`${v}-view`).hidden = v !== view;
  const tab = view === "submission" ? "queue" : view;
  for (const link of document.querySelectorAll(".tabs a")) {
    if (link.dataset.tab === tab) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (view === "queue") loadQueue();
  else if (view === "submission") loadSubmission(Number(arg));
  else if (view === "slots") openSlots();
  else if (view === "comfort") openComfort();
  else if (view === "audit") openAudit();
}

// ---------------------------------------------------------------- queue

function fillStatusFilter() {
  const select = $("filter-status");
  clear(
    select,
    el("option", { value: "all" }, "全部"),
    Object.entries(STATUS_LABELS).map(([value, label]) => el("option", { value }, label)),
  );
  select.value = state.queue.status;
}

async function loadQueue() {
  const q = state.queue;
  const params = new URLSearchParams({ status: q.status, page: q.page, page_size: q.pageSize });
  if (q.form_code) params.set("form_code", q.form_code);
  if (q.claimed) params.set("claimed", q.claimed);
  $("queue-error").textContent = "";
  let answer;
  try {
    answer = await call(`/api/v1/staff/submissions?${params}`);
  } catch (err) {
    $("queue-error").textContent = errorText(err);
    return;
  }
  q.total = answer.total;
  const rows = answer.items.map((s) =>
    el(
      "tr",
      { dataset: { submissionId: s.id } },
      el("td", {}, s.tracking_no),
      el("td", {}, s.form_title),
      el("td", {}, s.taxpayer_name || "—", el("br"), el("small", { class: "muted" }, s.taxpayer_id || "")),
      el("td", {}, s.total_incl_tax ? `¥${s.total_incl_tax}` : "—"),
      el(
        "td",
        {},
        el("span", { class: `badge status-${s.status}` }, s.status_label || statusLabel(s.status)),
        s.claimed_by_me ? el("small", { class: "muted" }, " 我已认领") : null,
      ),
      el("td", {}, formatTime(s.submitted_at)),
      el("td", {}, el("a", { href: `#submission/${s.id}`, class: "button secondary" }, "查看")),
    ),
  );
  if (!rows.length) {
    rows.push(el("tr", {}, el("td", { colspan: 7, class: "muted" }, "没有符合条件的文书")));
  }
  clear($("queue-rows"), rows);
  const pages = Math.max(1, Math.ceil(q.total / q.pageSize));
  $("page-info").textContent = `第 ${q.page} / ${pages} 页，共 ${q.total} 件`;
  $("page-prev").disabled = q.page <= 1;
  $("page-next").disabled = q.page >= pages;
}

function onFilter(event) {
  event.preventDefault();
  const form = event.currentTarget;
  Object.assign(state.queue, {
    status: form.status.value,
    form_code: form.form_code.value,
    claimed: form.claimed.value,
    page: 1,
  });
  loadQueue();
}

function turnPage(step) {
  state.queue.page = Math.max(1, state.queue.page + step);
  loadQueue();
}

// ---------------------------------------------------------------- one submission

async function formSchema(code) {
  if (!state.schema.has(code)) {
    try {
      state.schema.set(code, await api(`/api/v1/forms/${encodeURIComponent(code)}`));
    } catch {
      state.schema.set(code, null);
    }
  }
  return state.schema.get(code);
}

// Field labels by path ("buyer.name", "lines.amount_incl_tax") from the form's schema.
function labelsOf(schema) {
  const labels = new Map();
  const walk = (fields, prefix) => {
    for (const f of fields || []) {
      const path = prefix ? `${prefix}.${f.name}` : f.name;
      labels.set(path, f.label);
      if (f.fields) walk(f.fields, path);
      if (f.items && f.items.fields) walk(f.items.fields, path);
    }
  };
  walk(schema && schema.fields, "");
  return labels;
}

function optionLabel(schema, path, value) {
  const names = path.split(".").filter((p) => !/^\d+$/.test(p));
  let fields = schema && schema.fields;
  let field = null;
  for (const name of names) {
    field = (fields || []).find((f) => f.name === name);
    if (!field) return value;
    fields = field.fields || (field.items && field.items.fields);
  }
  const option = field && (field.options || []).find((o) => o.value === value);
  return option ? option.label : value;
}

// Every leaf of the form data as [path, value]: what the reviewer reads and may return.
function leaves(data, prefix = "") {
  const out = [];
  if (Array.isArray(data)) {
    data.forEach((v, i) => out.push(...leaves(v, `${prefix}.${i}`)));
  } else if (data && typeof data === "object") {
    for (const [k, v] of Object.entries(data)) out.push(...leaves(v, prefix ? `${prefix}.${k}` : k));
  } else {
    out.push([prefix, data]);
  }
  return out;
}

function labelFor(labels, path) {
  const generic = path.replace(/\.\d+(?=\.|$)/g, "");
  const index = path.match(/\.(\d+)(?=\.|$)/);
  const base = labels.get(generic) || path;
  return index ? `${base}（第 ${Number(index[1]) + 1} 行）` : base;
}

async function loadSubmission(id) {
  $("sub-error").textContent = "";
  $("sub-notice").textContent = "";
  if (!Number.isInteger(id) || id < 1) {
    $("sub-error").textContent = "文书编号不正确";
    return;
  }
  let s;
  try {
    s = await call(`/api/v1/staff/submissions/${id}`);
  } catch (err) {
    $("sub-error").textContent = errorText(err);
    return;
  }
  state.submission = s;
  const schema = await formSchema(s.form_code);
  const labels = labelsOf(schema);
  $("sub-title").textContent = `${s.form_title} · ${s.tracking_no}`;

  const summary = [
    ["受理编号", s.tracking_no],
    ["状态", el("span", { class: `badge status-${s.status}` }, s.status_label || statusLabel(s.status))],
    ["纳税人", `${s.taxpayer_name || "—"}（${s.taxpayer_id || "—"}）`],
    ["提交时间", formatTime(s.submitted_at)],
    ["版本", String(s.version)],
    ["认领", s.claimed_by_me ? "我已认领" : s.claimed ? "他人已认领" : "未认领"],
  ];
  if (s.result) summary.push(["办理结果", resultText(s.result)]);
  clear($("sub-summary"), summary.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));

  const rows = leaves(s.data || {}).map(([path, value]) =>
    el(
      "tr",
      {},
      el("th", { scope: "row" }, labelFor(labels, path)),
      el("td", {}, String(optionLabel(schema, path, value) ?? "")),
    ),
  );
  clear($("sub-data"), el("table", { class: "data-table" }, el("tbody", {}, rows)));

  renderQuote(s.quote);
  renderAttachments(s);
  clear(
    $("sub-timeline"),
    (s.timeline || []).map((t) =>
      el(
        "li",
        {},
        el("strong", {}, t.status_label || statusLabel(t.status)),
        " ",
        el("span", { class: "muted" }, `${formatTime(t.at)} · ${ACTOR_LABELS[t.actor_kind] || t.actor_kind}`),
        t.note ? el("div", {}, t.note) : null,
      ),
    ),
  );
  renderActions(s, labels);
}

function resultText(result) {
  if (typeof result !== "object") return String(result);
  if (result.number) return result.number;
  if (result.reason) return result.reason;
  return JSON.stringify(result);
}

function renderQuote(quote) {
  $("sub-quote-card").hidden = !quote;
  if (!quote) return;
  const surtaxes = quote.surtaxes || {};
  const rows = [
    ["价税合计", quote.total_incl_tax],
    ["不含税金额", quote.total_excl_tax],
    ["增值税", quote.total_tax],
    ["城市维护建设税", surtaxes.urban_maintenance],
    ["教育费附加", surtaxes.education],
    ["地方教育附加", surtaxes.local_education],
    ["应缴合计", quote.payable],
  ].filter(([, v]) => v !== undefined && v !== null);
  clear($("sub-quote"), rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, `¥${v}`)]));
}

function renderAttachments(s) {
  const list = $("sub-attachments");
  if (!(s.attachments || []).length) {
    clear(list, el("li", { class: "muted" }, "无附件"));
    return;
  }
  clear(
    list,
    s.attachments.map((a) => {
      const item = el("li", {});
      const open = el(
        "button",
        { type: "button", class: "secondary", onclick: () => openAttachment(s.id, a, item) },
        "查看",
      );
      item.append(`${a.name}（${Math.ceil(a.size / 1024)} KB） `, open);
      return item;
    }),
  );
}

// Attachments answer only with the reviewer's token (and each look is audited), so they are
// fetched here and shown from a blob: URL instead of a plain link.
async function openAttachment(submissionId, attachment, item) {
  try {
    const response = await fetch(
      `/api/v1/staff/submissions/${submissionId}/attachments/${attachment.attachment_id}`,
      { headers: { Authorization: `Bearer ${state.token}` }, cache: "no-store" },
    );
    if (response.status === 401) return signOutLocally("登录已过期，请重新登录");
    if (!response.ok) throw new Error(`附件打开失败（HTTP ${response.status}）`);
    const url = URL.createObjectURL(await response.blob());
    item.querySelector(".attachment-preview")?.remove();
    if ((attachment.content_type || "").startsWith("image/")) {
      item.append(el("img", { class: "attachment-preview", src: url, alt: attachment.name }));
    } else {
      const link = el("a", { href: url, download: attachment.name, class: "attachment-preview" }, "下载 " + attachment.name);
      item.append(link);
      link.click();
    }
  } catch (err) {
    $("sub-error").textContent = errorText(err);
  }
}

function renderActions(s, labels) {
  const box = $("sub-actions");
  const groups = [];
  if (s.status === "submitted") {
    groups.push(simpleAction("claim", "认领", "认领后由您负责审核此文书。"));
  }
  if (s.status === "in_review" && s.claimed_by_me) {
    groups.push(simpleAction("approve", "审核通过"));
    groups.push(rejectAction());
    groups.push(returnAction(s, labels));
  } else if (s.status === "in_review") {
    groups.push(el("p", { class: "muted" }, "该文书已由其他审核人员认领。"));
  }
  if (s.status === "approved") groups.push(completeAction(s));
  if (!groups.length) groups.push(el("p", { class: "muted" }, "当前状态无需审核操作。"));
  clear(box, groups);
}

function simpleAction(action, label, hint) {
  const form = el(
    "form",
    { class: "action-group", dataset: { action } },
    hint ? el("p", { class: "muted" }, hint) : null,
    el(
      "div",
      { class: "field" },
      el("label", { for: `comment-${action}` }, "备注（可选）"),
      el("input", { id: `comment-${action}`, name: "comment", maxlength: 500 }),
    ),
    el("button", { type: "submit", id: `do-${action}` }, label),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const comment = form.comment.value.trim();
    decide(action, comment ? { comment } : {});
  });
  return form;
}

function rejectAction() {
  const form = el(
    "form",
    { class: "action-group", dataset: { action: "reject" } },
    el(
      "div",
      { class: "field" },
      el("label", { for: "reject-reason" }, "不予通过的理由"),
      el("textarea", { id: "reject-reason", name: "reason", rows: 2, maxlength: 500, required: true }),
    ),
    el("button", { type: "submit", class: "danger", id: "do-reject" }, "不予通过"),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const reason = form.reason.value.trim();
    if (!reason) {
      $("sub-error").textContent = "请填写不予通过的理由";
      form.reason.focus();
      return;
    }
    decide("reject", { reason });
  });
  return form;
}

function returnAction(s, labels) {
  const paths = leaves(s.data || {}).map(([p]) => p);
  const rows = el("div", {});
  const addRow = () => {
    const n = rows.children.length;
    const select = el(
      "select",
      { name: "path", "aria-label": `需补正的字段 ${n + 1}` },
      paths.map((p) => el("option", { value: p }, labelFor(labels, p))),
    );
    const why = el("input", { name: "why", "aria-label": `补正说明 ${n + 1}`, maxlength: 200, placeholder: "补正说明" });
    const remove = el("button", { type: "button", class: "secondary", onclick: () => row.remove() }, "删除");
    const row = el("div", { class: "reason-row" }, select, why, remove);
    rows.append(row);
    why.focus();
  };
  const form = el(
    "form",
    { class: "action-group", dataset: { action: "return" } },
    el("p", { class: "muted" }, "按字段写明需补正的内容，申请人修改后重新提交。"),
    rows,
    el("div", { class: "button-row" },
      el("button", { type: "button", class: "secondary", onclick: addRow }, "添加字段"),
      el("button", { type: "submit", id: "do-return" }, "退回补正"),
    ),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const fields = {};
    for (const row of rows.children) {
      const why = row.querySelector("[name=why]").value.trim();
      if (why) fields[row.querySelector("[name=path]").value] = why;
    }
    if (!Object.keys(fields).length) {
      $("sub-error").textContent = "请至少写明一个字段的补正说明";
      return;
    }
    decide("return", { fields });
  });
  if (paths.length) addRow();
  return form;
}

function completeAction(s) {
  const numbered = s.form_code === "proxy_invoice";
  const form = el(
    "form",
    { class: "action-group", dataset: { action: "complete" } },
    numbered
      ? el(
          "div",
          { class: "field" },
          el("label", { for: "complete-result" }, "数电发票号码（20 位）"),
          el("input", { id: "complete-result", name: "result", inputmode: "numeric", maxlength: 20, required: true }),
        )
      : el("p", { class: "muted" }, "办结时系统自动编号。"),
    el("button", { type: "submit", id: "do-complete" }, "办结"),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    decide("complete", numbered ? { result: form.result.value.trim() } : {});
  });
  return form;
}

async function decide(action, extra) {
  const s = state.submission;
  $("sub-error").textContent = "";
  $("sub-notice").textContent = "";
  for (const button of $("sub-actions").querySelectorAll("button")) button.disabled = true;
  try {
    const answer = await call(`/api/v1/staff/submissions/${s.id}/${action}`, {
      method: "POST",
      body: { version: s.version, ...extra },
    });
    await loadSubmission(s.id);
    $("sub-notice").textContent = `已${ACTION_DONE[action]}，当前状态：${answer.status_label || statusLabel(answer.status)}`;
  } catch (err) {
    if (err instanceof ApiError && err.status === 409) {
      // Someone else acted on this version: show what it is now rather than the stale page.
      await loadSubmission(s.id);
      $("sub-error").textContent = `${errorText(err)}。页面已刷新为最新状态。`;
    } else {
      $("sub-error").textContent = errorText(err);
      for (const button of $("sub-actions").querySelectorAll("button")) button.disabled = false;
    }
  }
}

const ACTION_DONE = {
  claim: "认领",
  approve: "审核通过",
  reject: "不予通过",
  return: "退回补正",
  complete: "办结",
};

// ---------------------------------------------------------------- slots and invitations

function currentHall(selectId) {
  return state.halls.find((h) => h.hall_id === $(selectId).value) || state.halls[0];
}

function fillCategories() {
  const hall = currentHall("slots-hall");
  const options = () => ((hall && hall.categories) || []).map((c) => el("option", { value: c.code }, c.name));
  clear($("slot-category"), options());
  clear($("slots-category"), el("option", { value: "" }, "全部"), options());
}

function categoryName(hall, code) {
  const found = ((hall && hall.categories) || []).find((c) => c.code === code);
  return found ? found.name : code;
}

function openSlots() {
  if (!$("slots-date").value) $("slots-date").value = beijingDate(new Date(), 1);
  loadSlots();
}

async function loadSlots() {
  const hall = currentHall("slots-hall");
  $("slots-error").textContent = "";
  if (!hall) return;
  const params = new URLSearchParams({ date: $("slots-date").value });
  if ($("slots-category").value) params.set("category", $("slots-category").value);
  const hallPath = encodeURIComponent(hall.hall_id);
  let slots;
  try {
    // The staff list has the reserved places too; without halls.manage the public one will do.
    try {
      slots = await call(`/api/v1/staff/halls/${hallPath}/slots?${params}`);
    } catch (err) {
      if (err.status !== 403 && err.status !== 404 && err.status !== 405) throw err;
      slots = await api(`/api/v1/halls/${hallPath}/slots?${params}`);
    }
  } catch (err) {
    if (err.status === 404) {
      $("slots-unavailable").hidden = false;
      clear($("slots-rows"));
    } else {
      $("slots-error").textContent = errorText(err);
    }
    return;
  }
  $("slots-unavailable").hidden = true;
  const rows = slots.map((slot) =>
    el(
      "tr",
      {},
      el("td", {}, `${timeOf(slot.start)}–${timeOf(slot.end)}`),
      el("td", {}, categoryName(hall, slot.category)),
      el("td", {}, String(slot.capacity)),
      el("td", {}, String(slot.remaining)),
      el("td", {}, slot.invitations_left === undefined ? "—" : String(slot.invitations_left)),
    ),
  );
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 5, class: "muted" }, "当天没有时段")));
  clear($("slots-rows"), rows);
  clear(
    $("invite-slot"),
    slots.map((slot) =>
      el(
        "option",
        { value: slot.slot_id },
        `${timeOf(slot.start)}–${timeOf(slot.end)} ${categoryName(hall, slot.category)}（剩余 ${slot.remaining}）`,
      ),
    ),
  );
  loadInvitations();
}

function timeOf(value) {
  if (!value) return "";
  const match = String(value).match(/T(\d{2}:\d{2})/) || String(value).match(/^(\d{2}:\d{2})/);
  return match ? match[1] : value;
}

async function createSlot(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const hall = currentHall("slots-hall");
  const msg = $("slot-create-msg");
  msg.className = "";
  try {
    await call(`/api/v1/staff/halls/${encodeURIComponent(hall.hall_id)}/slots`, {
      method: "POST",
      body: {
        date: $("slots-date").value,
        start: form.start.value,
        end: form.end.value,
        category: form.category.value,
        capacity: Number(form.capacity.value),
      },
    });
    msg.className = "notice";
    msg.textContent = "时段已新增";
    loadSlots();
  } catch (err) {
    msg.className = "error";
    msg.textContent = err.status === 404 ? "新增时段功能尚未开放" : errorText(err);
  }
}

async function invite(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const msg = $("invite-msg");
  msg.className = "";
  const body = {
    slot_id: Number(form.slot_id.value),
    id_type: "resident_id",
    id_number: form.id_number.value.trim().toUpperCase(),
  };
  if (form.message.value.trim()) body.message = form.message.value.trim();
  try {
    await call("/api/v1/staff/invitations", { method: "POST", body });
    msg.className = "notice";
    msg.textContent = "邀约已发送";
    form.id_number.value = "";
    form.message.value = "";
    loadSlots();
  } catch (err) {
    msg.className = "error";
    msg.textContent = err.status === 404 ? "邀约功能尚未开放" : errorText(err);
  }
}

async function loadInvitations() {
  const slotId = $("invite-slot").value;
  let answer;
  try {
    if (!slotId) throw new Error("no slot");
    answer = await call(`/api/v1/staff/slots/${encodeURIComponent(slotId)}/invitations`);
  } catch {
    // Without halls.manage (or before the route exists) the card stays hidden, not an error.
    $("invitations-card").hidden = true;
    return;
  }
  const items = answer.invitations || [];
  $("invitations-card").hidden = false;
  clear(
    $("invitations"),
    items.length
      ? items.map((i) =>
          el(
            "li",
            {},
            `${(i.person && i.person.name_masked) || ""} · ${INVITE_STATUS[i.status] || i.status}`,
            el("small", { class: "muted" }, ` 有效至 ${formatTime(i.expires_at)}`),
          ),
        )
      : el("li", { class: "muted" }, "该时段暂无邀约"),
  );
}

const INVITE_STATUS = {
  pending: "待答复",
  accepted: "已接受",
  declined: "已谢绝",
  expired: "已过期",
  cancelled: "已取消",
};

// ---------------------------------------------------------------- comfort index

function openComfort() {
  if (!$("comfort-month").value) $("comfort-month").value = beijingMonth();
  showComfort();
}

function showComfort(event) {
  if (event) event.preventDefault();
  const hall = currentHall("comfort-hall");
  if (!hall) return;
  const month = $("comfort-month").value;
  const img = $("comfort-chart");
  img.hidden = false;
  // A new query string each time: a publication replaces the month's chart.
  img.src = `/api/v1/halls/${encodeURIComponent(hall.hall_id)}/comfort.svg?month=${month}&t=${Date.now()}`;
  $("comfort-caption").textContent = `${hall.name} ${month} 办税舒适度曲线（按预计人流着色：较少 / 适中 / 较多）`;
}

async function publishComfort() {
  const hall = currentHall("comfort-hall");
  const month = $("comfort-month").value;
  const msg = $("comfort-msg");
  msg.className = "";
  if (!hall || !month) return;
  try {
    await call(`/api/v1/staff/halls/${encodeURIComponent(hall.hall_id)}/comfort/publish`, {
      method: "POST",
      body: { month },
    });
    msg.className = "notice";
    msg.textContent = `${month} 的舒适度指数已发布`;
    showComfort();
  } catch (err) {
    msg.className = "error";
    msg.textContent = err.status === 404 ? "发布功能尚未开放" : errorText(err);
  }
}

function comfortMissing() {
  $("comfort-chart").hidden = true;
  $("comfort-caption").textContent = "该月的舒适度指数尚未发布。";
}

// ---------------------------------------------------------------- audit log

async function openAudit(event) {
  if (event) event.preventDefault();
  const params = new URLSearchParams();
  const since = $("audit-since").value;
  const actor = $("audit-actor").value.trim();
  if (since) params.set("since", `${since}T00:00:00+08:00`);
  if (actor) params.set("actor", actor);
  $("audit-error").textContent = "";
  let answer;
  try {
    answer = await call(`/api/v1/staff/audit?${params}`);
  } catch (err) {
    if (err.status === 404) {
      $("audit-unavailable").hidden = false;
      $("audit-body").hidden = true;
    } else {
      $("audit-body").hidden = false;
      $("audit-error").textContent =
        err.status === 403 ? "当前账号没有查看审计日志的权限（需要 audit.view）" : errorText(err);
      clear($("audit-rows"));
    }
    return;
  }
  $("audit-unavailable").hidden = true;
  $("audit-body").hidden = false;
  const items = answer.events || [];
  const chain = answer.chain;
  if (chain) {
    $("audit-chain").textContent = chain.intact
      ? `日志哈希链校验通过（共 ${chain.rows} 条）`
      : `日志哈希链校验未通过：有 ${chain.problems.length} 处异常，记录可能被改动`;
    $("audit-chain").className = chain.intact ? "notice" : "error";
  }
  clear(
    $("audit-rows"),
    items.map((e) =>
      el(
        "tr",
        {},
        el("td", {}, formatTime(e.at)),
        el("td", {}, e.action || ""),
        el("td", {}, e.actor || ""),
        el("td", {}, e.target || ""),
        el("td", {}, e.outcome || ""),
      ),
    ),
  );
}

// ---------------------------------------------------------------- start

function start() {
  fillStatusFilter();
  $("login-form").addEventListener("submit", onLogin);
  $("logout").addEventListener("click", onLogout);
  $("queue-filters").addEventListener("submit", onFilter);
  $("page-prev").addEventListener("click", () => turnPage(-1));
  $("page-next").addEventListener("click", () => turnPage(1));
  $("slots-query").addEventListener("submit", (e) => {
    e.preventDefault();
    loadSlots();
  });
  $("slots-hall").addEventListener("change", fillCategories);
  $("slot-create").addEventListener("submit", createSlot);
  $("invite-form").addEventListener("submit", invite);
  $("invite-slot").addEventListener("change", loadInvitations);
  $("comfort-form").addEventListener("submit", showComfort);
  $("comfort-publish").addEventListener("click", publishComfort);
  $("comfort-chart").addEventListener("error", comfortMissing);
  $("audit-form").addEventListener("submit", openAudit);
  window.addEventListener("hashchange", route);
  if (state.token) enter();
  else showLogin();
}

start();
