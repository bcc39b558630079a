// Helpers shared by the Khala pages. Everything the API returns is hostile text: it only ever
// reaches the page through textContent (el() below) — never innerHTML, never an href.

export const STATUS = [
  { name: "Pending", cls: "pending", mark: "◷" },
  { name: "Compiling", cls: "active", mark: "⟳" },
  { name: "Compile failed", cls: "failed", mark: "✗" },
  { name: "Running", cls: "active", mark: "⟳" },
  { name: "Run failed", cls: "failed", mark: "✗" },
  { name: "Success", cls: "success", mark: "✓" },
  { name: "Retrying", cls: "retrying", mark: "↻" },
  { name: "Cancelled", cls: "cancelled", mark: "⊘" },
  { name: "Unknown error", cls: "error", mark: "!" },
];

// The API's result codes, as a person should read them.
export const RESULTS = {
  1: "Error: no judicator could be reached (result 1). The cluster may be down; try again.",
  2: "Not found (result 2).",
  3: "Too large (result 3): the archives and texts together exceed the gateway's limit.",
  4: "Invalid input (result 4).",
};

// A new element. attrs: "class", "text" (textContent) or attributes set as strings.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// "2024-01-13T08:00:00.123456" → "2024-01-13 08:00:00" (UTC, as the API gives it).
export function fmtTime(iso) {
  if (!iso) return "—";
  const text = String(iso);
  return /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/.test(text) ? text.slice(0, 19).replace("T", " ") : text;
}

export function timeEl(iso) {
  return el("time", { datetime: iso || null, title: iso || null, text: fmtTime(iso) });
}

// GET a JSON answer of the API; throws on a non-200 answer or a network failure.
export async function getJSON(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") query.set(key, String(value));
  }
  const url = query.toString() ? `${path}?${query}` : path;
  const response = await fetch(url, { headers: { Accept: "application/json", ...authHeaders() },
    cache: "no-store" });
  if (response.status === 401 || response.status === 403) askForKey(response.status);
  if (!response.ok) throw new Error(`the gateway answered HTTP ${response.status}`);
  return response.json();
}

export function say(node, text, kind = "info") {
  node.textContent = text;
  node.dataset.kind = text ? kind : "";
}

// Marks the page loaded (the tests wait on it): data-state and a count of renders.
export function markLoaded(state = "ready") {
  const main = document.getElementById("main");
  main.dataset.state = state;
  main.dataset.loads = String(Number(main.dataset.loads || "0") + 1);
}

// Runs `step` now and again every `ms` while it answers true; stops when the page goes away.
// A failed step is retried at most `maxFailures` times in a row, then the poller gives up.
export function poll(step, ms, maxFailures = 30) {
  let timer = null;
  let failures = 0;
  let stopped = false;
  let running = false;
  let rerun = false;
  const run = async () => {
    if (running) {
      rerun = true;
      return;
    }
    running = true;
    timer = null;
    let again = false;
    try {
      again = await step();
      failures = 0;
    } catch (error) {
      failures += 1;
      again = failures < maxFailures;
    }
    running = false;
    if (stopped) return;
    if (rerun) {
      rerun = false;
      run();
    } else if (again) {
      timer = setTimeout(run, ms);
    }
  };
  window.addEventListener("pagehide", () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  });
  run();
  return {
    now() {
      if (timer) clearTimeout(timer);
      timer = null;
      if (!stopped) run();
    },
  };
}

// ----------------------------------------------------------------------------- API v2 (judging)

// A task reference of API v2: a client id ([A-Za-z0-9._-]{1,64}) or a seed id. Only such a
// reference is ever put into a URL, and those characters need no escaping.
const REF_RE = /^[A-Za-z0-9._-]{1,64}$/;

export function isRef(text) {
  return typeof text === "string" && REF_RE.test(text) && text !== "." && text !== "..";
}

export function refLink(ref) {
  if (!isRef(ref)) return el("span", { class: "mono", text: ref });
  return el("a", { class: "mono", href: `/tasks/${ref}`, text: ref });
}

// The API key a person gave this tab (a gateway with keys on answers 401 without one; the
// form in every page's footer asks for it then). Sent as a Bearer token, never in a URL.
const KEY_ITEM = "khala-api-key";

export function apiKey() {
  try {
    return sessionStorage.getItem(KEY_ITEM) || "";
  } catch (error) {
    return "";
  }
}

export function authHeaders() {
  const key = apiKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

function askForKey(status) {
  const form = document.getElementById("key-form");
  if (!form || !form.hidden) return;
  document.getElementById("key-note").textContent = status === 401
    ? (apiKey() ? "This API key was not accepted: enter another one." : "This gateway needs an API key.")
    : "This API key may not do that: enter another one.";
  form.hidden = false;
}

const keyForm = document.getElementById("key-form");
if (keyForm) {
  keyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    try {
      sessionStorage.setItem(KEY_ITEM, document.getElementById("api-key").value.trim());
    } catch (error) {
      return;
    }
    location.reload();
  });
}

// An API v2 call: { status, body } (body null when empty or not JSON); throws on a network
// failure only. A 401 or 403 shows the API key form.
export async function v2(path, options = {}) {
  const init = { cache: "no-store", ...options };
  init.headers = { Accept: "application/json", ...authHeaders(), ...(options.headers || {}) };
  if (options.json !== undefined) {
    init.method = init.method || "POST";
    init.body = JSON.stringify(options.json);
    init.headers = { ...init.headers, "Content-Type": "application/json" };
    delete init.json;
  }
  const response = await fetch(path, init);
  if (response.status === 401 || response.status === 403) askForKey(response.status);
  let body = null;
  try {
    body = await response.json();
  } catch (error) {
    body = null;
  }
  return { status: response.status, body };
}

// The errors of a v2 answer as one sentence.
export function v2Error(answer) {
  const errors = answer.body && Array.isArray(answer.body.errors) ? answer.body.errors : [];
  const text = errors.map((e) => String(e.detail || e.title || "")).filter(Boolean).join("; ");
  return text || `the gateway answered HTTP ${answer.status}`;
}

export const VERDICTS = {
  accepted: { text: "Accepted", cls: "success", mark: "✓" },
  wrong_answer: { text: "Wrong answer", cls: "failed", mark: "✗" },
  time_limit: { text: "Time limit exceeded", cls: "failed", mark: "⏱" },
  memory_limit: { text: "Memory limit exceeded", cls: "failed", mark: "✗" },
  output_limit: { text: "Output limit exceeded", cls: "failed", mark: "✗" },
  runtime_error: { text: "Runtime error", cls: "failed", mark: "✗" },
  compile_error: { text: "Compile error", cls: "failed", mark: "✗" },
  internal_error: { text: "Internal error", cls: "error", mark: "!" },
  skipped: { text: "Skipped", cls: "pending", mark: "–" },
  partial: { text: "Partial points", cls: "failed", mark: "◐" },
};

// The first case that failed (1-based), or 0.
export function failedCase(judgement) {
  const cases = (judgement && judgement.cases) || [];
  const index = cases.findIndex((c) => c.verdict !== "accepted" && c.verdict !== "skipped");
  return index + 1;
}

// How a task came out, in words and colour: { text, cls, mark, verdict }.
export function outcome(task) {
  const judgement = task.result && task.result.judgement;
  if (task.done && judgement) {
    const v = VERDICTS[judgement.verdict] || VERDICTS.internal_error;
    const n = failedCase(judgement);
    const perCase = !["accepted", "compile_error", "internal_error", "skipped"].includes(
      judgement.verdict);
    return { ...v, text: perCase && n ? `${v.text} on case ${n}` : v.text,
      verdict: judgement.verdict };
  }
  const s = STATUS[task.status_code] || { name: task.status, cls: "error", mark: "?" };
  return { text: s.name, cls: s.cls, mark: s.mark, verdict: null };
}

export function outcomeBadge(task, big = false) {
  const o = outcome(task);
  return el("span", { class: `status status-${o.cls}${big ? " big" : ""}`,
    "data-status": task.status_code, "data-verdict": o.verdict || "" },
  el("span", { class: "mark", "aria-hidden": "true", text: o.mark }), ` ${o.text}`);
}

export function fmtSeconds(value) {
  if (value === null || value === undefined) return "—";
  const n = Number(value);
  return n < 10 ? `${n.toFixed(3)} s` : `${n.toFixed(1)} s`;
}

export function fmtBytes(value) {
  if (value === null || value === undefined) return "—";
  const n = Number(value);
  if (n >= 1048576) return `${(n / 1048576).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(0)} KiB`;
  return `${n} B`;
}

// Time (the slowest case's CPU time, else the execute step's) and memory (the peak) of a task.
export function usage(task) {
  const r = task.result || {};
  const cases = (r.judgement && r.judgement.cases) || [];
  if (cases.length) {
    const ran = cases.filter((c) => c.verdict !== "skipped");
    return { time: ran.length ? Math.max(...ran.map((c) => c.time)) : null,
      memory: ran.length ? Math.max(...ran.map((c) => c.memory)) : null };
  }
  const step = r.execute;
  if (!step) return { time: null, memory: null };
  return { time: step.rusage.cpu_time, memory: step.rusage.maxrss };
}
