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

const ID_RE = /^[0-9a-f]{24}$/;

export function isId(text) {
  return typeof text === "string" && ID_RE.test(text);
}

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

export function statusBadge(code) {
  const s = STATUS[code] || { name: `Status ${code}`, cls: "error", mark: "?" };
  return el("span", { class: `status status-${s.cls}`, "data-status": code },
    el("span", { class: "mark", "aria-hidden": "true", text: s.mark }), ` ${s.name}`);
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

// A link to the task page when `id` is a well-formed id, else the id as plain text.
export function taskLink(id) {
  if (!isId(id)) return el("span", { class: "mono", text: id });
  return el("a", { class: "mono", href: `/tasks/${id}`, text: id });
}

export function fileUrl(id, file) {
  return `/api/task?${new URLSearchParams({ id, file })}`;
}

// GET a JSON answer of the API; throws on a non-200 answer or a network failure.
export async function getJSON(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") query.set(key, String(value));
  }
  const url = query.toString() ? `${path}?${query}` : path;
  const response = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
  if (!response.ok) throw new Error(`the gateway answered HTTP ${response.status}`);
  return response.json();
}

// DELETE /api/task?id=… → the result code.
export async function cancelTask(id) {
  const response = await fetch(`/api/task?${new URLSearchParams({ id })}`, { method: "DELETE" });
  if (!response.ok) throw new Error(`the gateway answered HTTP ${response.status}`);
  return (await response.json()).result;
}

export function cancelMessage(id, code) {
  if (code === 0) return `Task ${id} cancelled.`;
  if (code === 2) return `Task ${id} could not be cancelled: it is already done or unknown (result 2).`;
  return `Task ${id} could not be cancelled: ${RESULTS[code] || `result ${code}`}`;
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
