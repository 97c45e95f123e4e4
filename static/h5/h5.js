// The H5 preview of the mini-program flows against the same API and the WeChat simulator:
// login (code "sim:<openid>"), real-name (face result "sim:<name>:<id_number>"), a proxy invoice
// with a live quote, progress, appointments and the hall. For demos and the front-end team.
import {
  ACTOR_LABELS,
  ApiError,
  api,
  beijingDate,
  beijingMonth,
  clear,
  el,
  errorText,
  formatTime,
  newIdempotencyKey,
  sessionApi,
  statusLabel,
} from "/static/common/api.js";

const TOKEN_KEY = "suban.h5.token";
const DEMO_TAXPAYER = "91440103MA59D8QK16";
const QUOTE_DELAY_MS = 300;
const $ = (id) => document.getElementById(id);

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  me: null,
  halls: [],
  quoteTimer: null,
  quoteSeq: 0,
  // One key per filing attempt: a double tap or a retry sends the same key and gets the same
  // submission; changing the form starts a new attempt.
  filingKey: null,
  currentSubmission: null,
};

function flash(message, isError = false) {
  const box = $("flash");
  box.textContent = message;
  box.classList.toggle("error", isError);
}

const call = sessionApi(
  () => state.token,
  () => {
    state.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    flash("登录已过期，请重新登录", true);
    location.hash = "#login";
  },
);

// ---------------------------------------------------------------- routing

const VIEWS = ["login", "realname", "home", "invoice", "progress", "booking", "hall"];

function route() {
  const [name, arg] = (location.hash.replace(/^#/, "") || "").split("/");
  let view = VIEWS.includes(name) ? name : state.token ? "invoice" : "login";
  if (!state.token) view = "login";
  else if (view === "login") view = "invoice";
  for (const v of VIEWS) $(`view-${v}`).hidden = v !== view;
  $("tabbar").hidden = !state.token;
  for (const link of document.querySelectorAll(".tabbar a")) {
    if (link.dataset.tab === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (view === "home") showHome();
  else if (view === "invoice") openInvoice();
  else if (view === "progress") openProgress(arg ? Number(arg) : null);
  else if (view === "booking") openBooking();
  else if (view === "hall") openHall();
}

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

// ---------------------------------------------------------------- login and real-name

async function onLogin(event) {
  event.preventDefault();
  const openid = event.currentTarget.openid.value.trim();
  $("login-submit").disabled = true;
  try {
    const answer = await api("/api/v1/mp/login", { method: "POST", body: { code: `sim:${openid}` } });
    state.token = answer.token;
    sessionStorage.setItem(TOKEN_KEY, answer.token);
    flash("登录成功");
    go(answer.realname_verified ? "#invoice" : "#realname");
  } catch (err) {
    flash(errorText(err), true);
  } finally {
    $("login-submit").disabled = false;
  }
}

async function onRealname(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const name = form.name.value.trim();
  const idNumber = form.id_number.value.trim().toUpperCase();
  $("realname-submit").disabled = true;
  try {
    await call("/api/v1/mp/realname", {
      method: "POST",
      body: {
        name,
        id_type: "resident_id",
        id_number: idNumber,
        // What wx.startFacialRecognitionVerify hands back, as the simulator understands it.
        verify_result: `sim:${name}:${idNumber}`,
      },
    });
    state.me = null;
    flash("实名认证成功");
    go("#invoice");
  } catch (err) {
    flash(errorText(err), true);
  } finally {
    $("realname-submit").disabled = false;
  }
}

async function loadMe() {
  if (!state.me) state.me = await call("/api/v1/mp/me");
  return state.me;
}

async function requireVerified() {
  const me = await loadMe();
  if (!me.person || !me.person.verified_at) {
    flash("请先完成实名认证", true);
    go("#realname");
    return null;
  }
  return me;
}

async function showHome() {
  let me;
  try {
    me = await loadMe();
  } catch (err) {
    flash(errorText(err), true);
    return;
  }
  const p = me.person || {};
  clear(
    $("me"),
    [
      ["姓名", p.name_masked || "未实名"],
      ["证件号码", p.id_number_masked || "—"],
      ["手机号", p.phone_masked || "—"],
      ["认证时间", formatTime(p.verified_at)],
    ].flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]),
  );
  clear(
    $("authorizations"),
    me.authorizations.length
      ? me.authorizations.map((a) => el("li", {}, `${a.taxpayer_name}（${a.role_label || a.role}）`))
      : el("li", { class: "muted" }, "暂无"),
  );
}

// ---------------------------------------------------------------- proxy invoice

// The quote needs the seller's kind; a 统一社会信用代码 starting "92" is a 个体工商户 (register
// authority 9, kind 2). Filing as oneself is a natural person.
function sellerKind(taxpayerId) {
  if (!taxpayerId) return "natural_person";
  return taxpayerId.startsWith("92") ? "individual_business" : "small_scale";
}

async function openInvoice() {
  let me;
  try {
    me = await requireVerified();
  } catch (err) {
    flash(errorText(err), true);
    return;
  }
  if (!me) return;
  const select = $("inv-taxpayer");
  const previous = select.value;
  clear(
    select,
    me.authorizations.map((a) => el("option", { value: a.taxpayer_id }, a.taxpayer_name)),
    el("option", { value: "" }, "本人（自然人）"),
  );
  const ids = me.authorizations.map((a) => a.taxpayer_id);
  select.value = previous && ids.includes(previous) ? previous : ids.includes(DEMO_TAXPAYER) ? DEMO_TAXPAYER : ids[0] || "";
  if (!$("inv-lines").children.length) addLine("维修服务", "5050.00");
  scheduleQuote();
}

function addLine(name = "", amount = "") {
  const box = $("inv-lines");
  const n = box.children.length + 1;
  const row = el(
    "div",
    { class: "line" },
    el(
      "div",
      { class: "field" },
      el("label", { for: `line-name-${n}` }, `名称（第 ${n} 行）`),
      el("input", { id: `line-name-${n}`, name: "line_name", value: name, required: true, maxlength: 100 }),
    ),
    el(
      "div",
      { class: "field" },
      el("label", { for: `line-amount-${n}` }, "含税金额"),
      el("input", { id: `line-amount-${n}`, name: "line_amount", value: amount, inputmode: "decimal", required: true }),
    ),
    el("button", { type: "button", class: "secondary", "aria-label": `删除第 ${n} 行` }, "删除"),
  );
  row.querySelector("button").addEventListener("click", () => {
    if (box.children.length > 1) {
      row.remove();
      formChanged();
    }
  });
  box.append(row);
}

function invoiceLines() {
  return Array.from($("inv-lines").children, (row) => ({
    name: row.querySelector("[name=line_name]").value.trim(),
    amount_incl_tax: row.querySelector("[name=line_amount]").value.trim(),
  }));
}

function formChanged() {
  state.filingKey = null;
  scheduleQuote();
}

function scheduleQuote() {
  clearTimeout(state.quoteTimer);
  state.quoteTimer = setTimeout(quote, QUOTE_DELAY_MS);
}

async function quote() {
  const lines = invoiceLines().filter((l) => l.name && /^\d+(\.\d{1,2})?$/.test(l.amount_incl_tax));
  if (!lines.length) {
    clear($("quote"));
    $("quote-error").textContent = "填写明细名称和金额后显示测算";
    return;
  }
  const seq = ++state.quoteSeq;
  try {
    const answer = await call("/api/v1/mp/invoice-quote", {
      method: "POST",
      body: {
        seller_kind: sellerKind($("inv-taxpayer").value),
        invoice_kind: $("inv-kind").value,
        location: $("inv-location").value,
        issue_date: beijingDate(),
        lines,
      },
    });
    // Answers may overtake each other: only the newest question's answer is shown.
    if (seq !== state.quoteSeq) return;
    $("quote-error").textContent = "";
    const s = answer.surtaxes || {};
    const rows = [
      ["价税合计", answer.total_incl_tax],
      ["不含税金额", answer.total_excl_tax],
      ["增值税", answer.total_tax],
      ["城市维护建设税", s.urban_maintenance],
      ["教育费附加", s.education],
      ["地方教育附加", s.local_education],
    ];
    clear(
      $("quote"),
      rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, `¥${v}`)]),
      el("dt", {}, "应缴税费"),
      el("dd", { class: "total", id: "quote-payable" }, `¥${answer.payable}`),
      answer.exempt ? [el("dt", {}, "说明"), el("dd", {}, "本次免征增值税")] : null,
    );
  } catch (err) {
    if (seq === state.quoteSeq) $("quote-error").textContent = errorText(err);
  }
}

async function onFile(event) {
  event.preventDefault();
  const form = event.currentTarget;
  $("invoice-error").textContent = "";
  const buyer = { name: form.buyer_name.value.trim() };
  if (form.buyer_taxpayer_id.value.trim()) buyer.taxpayer_id = form.buyer_taxpayer_id.value.trim().toUpperCase();
  const body = {
    form_code: "proxy_invoice",
    data: {
      invoice_kind: form.invoice_kind.value,
      location: form.location.value,
      buyer,
      lines: invoiceLines(),
    },
  };
  if (form.taxpayer_id.value) body.taxpayer_id = form.taxpayer_id.value;
  state.filingKey = state.filingKey || newIdempotencyKey();
  $("invoice-submit").disabled = true;
  try {
    const answer = await call("/api/v1/mp/submissions", {
      method: "POST",
      body,
      headers: { "Idempotency-Key": state.filingKey },
    });
    state.filingKey = null;
    flash(`已提交，受理编号 ${answer.tracking_no}`);
    go(`#progress/${answer.id}`);
  } catch (err) {
    $("invoice-error").textContent = errorText(err);
  } finally {
    $("invoice-submit").disabled = false;
  }
}

// ---------------------------------------------------------------- progress

async function openProgress(id) {
  if (id) {
    state.currentSubmission = id;
    await showSubmission(id);
  } else {
    $("progress-detail").hidden = true;
  }
  try {
    const answer = await call("/api/v1/mp/submissions");
    clear(
      $("submissions"),
      answer.items.length
        ? answer.items.map((s) =>
            el(
              "li",
              {},
              el("a", { href: `#progress/${s.id}` }, "查看"),
              el("div", {}, s.form_title),
              el("small", { class: "muted" }, `${s.tracking_no} · ${s.status_label || statusLabel(s.status)}`),
            ),
          )
        : el("li", { class: "muted" }, "暂无申请"),
    );
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 403)) flash(errorText(err), true);
  }
}

async function showSubmission(id) {
  let s;
  try {
    s = await call(`/api/v1/mp/submissions/${id}`);
  } catch (err) {
    flash(errorText(err), true);
    return;
  }
  $("progress-detail").hidden = false;
  $("progress-title").textContent = `${s.form_title}（${s.tracking_no}）`;
  const status = $("progress-status");
  status.textContent = s.status_label || statusLabel(s.status);
  status.dataset.status = s.status;
  clear(
    $("progress-timeline"),
    (s.timeline || []).map((t) =>
      el(
        "li",
        {},
        el("strong", {}, t.status_label || statusLabel(t.status)),
        " ",
        el("small", { class: "muted" }, `${formatTime(t.at)} · ${ACTOR_LABELS[t.actor_kind] || t.actor_kind}`),
        t.note ? el("div", {}, t.note) : null,
      ),
    ),
  );
}

// ---------------------------------------------------------------- appointments

async function loadHalls() {
  if (!state.halls.length) state.halls = await api("/api/v1/halls");
  return state.halls;
}

function bookingHall() {
  return state.halls.find((h) => h.hall_id === $("bk-hall").value) || state.halls[0];
}

async function openBooking() {
  try {
    await loadHalls();
  } catch (err) {
    flash(errorText(err), true);
    return;
  }
  if (!$("bk-hall").children.length) {
    clear($("bk-hall"), state.halls.map((h) => el("option", { value: h.hall_id }, h.name)));
    fillBookingCategories();
  }
  if (!$("bk-date").value) $("bk-date").value = beijingDate(new Date(), 1);
  loadAppointments();
}

function fillBookingCategories() {
  const hall = bookingHall();
  clear($("bk-category"), ((hall && hall.categories) || []).map((c) => el("option", { value: c.code }, c.name)));
}

function slotTime(value) {
  const match = String(value || "").match(/T(\d{2}:\d{2})/);
  return match ? match[1] : value;
}

async function findSlots(event) {
  event.preventDefault();
  const hall = bookingHall();
  const params = new URLSearchParams({ date: $("bk-date").value, category: $("bk-category").value });
  $("booking-msg").textContent = "";
  let slots;
  try {
    slots = await api(`/api/v1/halls/${encodeURIComponent(hall.hall_id)}/slots?${params}`);
  } catch (err) {
    $("booking-msg").textContent = err.status === 404 ? "预约功能尚未开放" : errorText(err);
    clear($("slots"));
    return;
  }
  clear(
    $("slots"),
    slots.length
      ? slots.map((slot) =>
          el(
            "li",
            {},
            el(
              "button",
              { type: "button", disabled: slot.remaining < 1, onclick: () => book(slot) },
              slot.remaining < 1 ? "已约满" : "预约",
            ),
            `${slotTime(slot.start)}–${slotTime(slot.end)}`,
            el("br"),
            el("small", { class: "muted" }, `剩余 ${slot.remaining} / ${slot.capacity}`),
          ),
        )
      : el("li", { class: "muted" }, "当天没有可预约的时段"),
  );
}

async function book(slot) {
  const body = { slot_id: slot.slot_id };
  const taxpayer = $("inv-taxpayer").value || DEMO_TAXPAYER;
  const me = state.me;
  if (me && me.authorizations.some((a) => a.taxpayer_id === taxpayer)) body.taxpayer_id = taxpayer;
  try {
    await call("/api/v1/mp/appointments", { method: "POST", body });
    flash(`已预约 ${slotTime(slot.start)}–${slotTime(slot.end)}`);
    loadAppointments();
  } catch (err) {
    flash(err.status === 404 ? "预约功能尚未开放" : errorText(err), true);
  }
}

async function loadAppointments() {
  let answer;
  try {
    answer = await call("/api/v1/mp/appointments");
  } catch (err) {
    clear($("appointments"), el("li", { class: "muted" }, err.status === 404 ? "预约功能尚未开放" : errorText(err)));
    return;
  }
  const items = Array.isArray(answer) ? answer : answer.items || [];
  clear(
    $("appointments"),
    items.length
      ? items.map((a) => {
          const slot = a.slot || {};
          const hall = state.halls.find((h) => h.hall_id === slot.hall_id);
          const category = ((hall && hall.categories) || []).find((c) => c.code === slot.category);
          return el(
            "li",
            { dataset: { appointmentId: a.appointment_id } },
            `${slot.date || ""} ${slotTime(slot.start)}–${slotTime(slot.end)} ${category ? category.name : slot.category || ""}`,
            el("br"),
            el("small", { class: "muted" }, APPOINTMENT_STATUS[a.status] || a.status || ""),
          );
        })
      : el("li", { class: "muted" }, "暂无预约"),
  );
}

const APPOINTMENT_STATUS = {
  booked: "已预约",
  checked_in: "已取号",
  done: "已办理",
  cancelled: "已取消",
  no_show: "未到场",
};

// ---------------------------------------------------------------- the hall

async function openHall() {
  let hall;
  try {
    hall = (await loadHalls())[0];
  } catch (err) {
    flash(errorText(err), true);
    return;
  }
  if (!hall) return;
  $("hall-name").textContent = hall.name;
  const names = new Map((hall.categories || []).map((c) => [c.code, c.name]));
  try {
    const status = await api(`/api/v1/halls/${encodeURIComponent(hall.hall_id)}/status`);
    const crowd = $("hall-crowd");
    crowd.textContent = status.crowd_level;
    crowd.className = `level-${status.crowd_level}`;
    $("hall-waiting").textContent = String(status.waiting_total);
    clear(
      $("hall-categories"),
      status.by_category.map((c) =>
        el(
          "li",
          {},
          `${names.get(c.category) || c.category}：等候 ${c.waiting} 人`,
          c.est_wait_minutes === null || c.est_wait_minutes === undefined ? "" : `，约 ${c.est_wait_minutes} 分钟`,
        ),
      ),
    );
    $("hall-updated").textContent = `${status.open ? "正在办公" : "当前非办公时间"} · 更新于 ${formatTime(status.updated_at)}`;
  } catch (err) {
    flash(errorText(err), true);
  }
  const img = $("hall-comfort");
  img.hidden = false;
  $("hall-comfort-missing").hidden = true;
  img.src = `/api/v1/halls/${encodeURIComponent(hall.hall_id)}/comfort.svg?month=${beijingMonth()}`;
}

// ---------------------------------------------------------------- start

function start() {
  $("login-openid").value = `demo-${Math.random().toString(36).slice(2, 10)}`;
  $("login-form").addEventListener("submit", onLogin);
  $("realname-form").addEventListener("submit", onRealname);
  $("invoice-form").addEventListener("submit", onFile);
  $("invoice-form").addEventListener("input", formChanged);
  $("invoice-form").addEventListener("change", formChanged);
  $("inv-add-line").addEventListener("click", () => {
    addLine();
    formChanged();
  });
  $("progress-refresh").addEventListener("click", () => {
    if (state.currentSubmission) showSubmission(state.currentSubmission);
  });
  $("booking-form").addEventListener("submit", findSlots);
  $("bk-hall").addEventListener("change", fillBookingCategories);
  $("hall-refresh").addEventListener("click", openHall);
  $("hall-comfort").addEventListener("error", () => {
    $("hall-comfort").hidden = true;
    $("hall-comfort-missing").hidden = false;
  });
  window.addEventListener("hashchange", route);
  route();
}

start();
