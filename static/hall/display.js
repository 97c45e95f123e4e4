// The hall screen: the live status over the WebSocket, reconnecting on its own with backoff and
// polling the status route while it is cut off; this month's comfort curve; a clock. No login.
import { api, beijingMonth, clear, el, formatTime } from "/static/common/api.js";

const $ = (id) => document.getElementById(id);
const hallId = decodeURIComponent(location.pathname.split("/")[2] || "");
const POLL_MS = 5000;
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30000;

let categories = new Map();
let backoff = BACKOFF_MIN_MS;
let pollTimer = null;
let lastSeen = "";
let comfortMonth = "";

function setConnection(kind, text) {
  $("board").dataset.connection = kind;
  const label = $("connection");
  label.textContent = text;
  label.classList.toggle("live", kind === "live");
}

function render(status) {
  // The socket and the poll may both deliver: keep the newest only.
  if (status.updated_at && status.updated_at < lastSeen) return;
  lastSeen = status.updated_at || lastSeen;
  const crowd = $("crowd-level");
  crowd.textContent = status.crowd_level || "—";
  crowd.className = `value level level-${status.crowd_level || ""}`;
  $("waiting-total").textContent = String(status.waiting_total ?? "—");
  $("windows-open").textContent = String(status.windows_open ?? "—");
  const online = (status.cameras || []).filter((c) => c.online && c.people_count !== null);
  $("people-count").textContent = online.length
    ? String(online.reduce((sum, c) => sum + c.people_count, 0))
    : "—";
  $("hall-state").textContent = status.open ? "正在办公" : "当前非办公时间";
  $("hall-state").classList.toggle("closed-note", !status.open);
  clear(
    $("category-rows"),
    (status.by_category || []).map((c) =>
      el(
        "tr",
        { dataset: { category: c.category } },
        el("td", {}, categories.get(c.category) || c.category),
        el("td", {}, `${c.waiting} 人`),
        el("td", {}, c.est_wait_minutes === null || c.est_wait_minutes === undefined ? "—" : `约 ${c.est_wait_minutes} 分钟`),
      ),
    ),
  );
  $("updated-at").textContent = `更新于 ${formatTime(status.updated_at)}`;
}

async function loadHall() {
  try {
    const halls = await api("/api/v1/halls");
    const hall = halls.find((h) => h.hall_id === hallId);
    if (!hall) {
      $("hall-name").textContent = "找不到该办税服务厅";
      setConnection("unknown", "请检查大屏地址");
      return false;
    }
    $("hall-name").textContent = hall.name;
    document.title = `${hall.name} · 实时信息`;
    categories = new Map((hall.categories || []).map((c) => [c.code, c.name]));
  } catch {
    // The names can wait; the status still shows category codes meanwhile.
  }
  return true;
}

async function poll() {
  try {
    render(await api(`/api/v1/halls/${encodeURIComponent(hallId)}/status`));
  } catch {
    // Still cut off: the footer already says so; try again on the next tick.
  }
}

function startPolling() {
  if (pollTimer === null) {
    poll();
    pollTimer = setInterval(poll, POLL_MS);
  }
}

function stopPolling() {
  if (pollTimer !== null) {
    clearInterval(pollTimer);
    pollTimer = null;
  }
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/api/v1/halls/${encodeURIComponent(hallId)}/live`);
  socket.addEventListener("open", () => {
    backoff = BACKOFF_MIN_MS;
    stopPolling();
    setConnection("live", "实时连接");
  });
  socket.addEventListener("message", (event) => {
    try {
      render(JSON.parse(event.data));
    } catch {
      // A frame that is not a status object is ignored.
    }
  });
  socket.addEventListener("close", (event) => {
    if (event.code === 4404) {
      setConnection("unknown", "找不到该办税服务厅");
      return;
    }
    setConnection("reconnecting", "连接中断，正在重新连接（期间每 5 秒刷新）");
    startPolling();
    // Jitter spreads the reconnects of many screens after a restart.
    const wait = backoff * (0.75 + Math.random() * 0.5);
    backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
    setTimeout(connect, wait);
  });
}

function tick() {
  const now = new Date();
  $("clock-time").textContent = now.toLocaleTimeString("zh-CN", {
    timeZone: "Asia/Shanghai",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hour12: false,
  });
  $("clock-date").textContent = now.toLocaleDateString("zh-CN", {
    timeZone: "Asia/Shanghai",
    year: "numeric",
    month: "long",
    day: "numeric",
    weekday: "long",
  });
  // The screen runs for weeks: the chart follows the month.
  const month = beijingMonth(now);
  if (month !== comfortMonth) {
    comfortMonth = month;
    $("comfort-missing").hidden = true;
    $("comfort-chart").hidden = false;
    $("comfort-chart").src = `/api/v1/halls/${encodeURIComponent(hallId)}/comfort.svg?month=${month}`;
  }
}

async function start() {
  $("comfort-chart").addEventListener("error", () => {
    $("comfort-chart").hidden = true;
    $("comfort-missing").hidden = false;
  });
  tick();
  setInterval(tick, 1000);
  if (!(await loadHall())) return;
  connect();
}

start();
