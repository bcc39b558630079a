// The tasks page (/): search, paging, order, auto-refresh while undone tasks are shown, cancel.
// Its own URL carries the search (?id=&user=&start_time=&end_time=&order=&per_page=&page=), so
// every view can be bookmarked and reloaded; `page` counts from 1 here (the API counts from 0).
import {
  cancelMessage, cancelTask, el, getJSON, isId, markLoaded, poll, RESULTS, say, statusBadge,
  taskLink, timeEl,
} from "./common.js";

const REFRESH_MS = 2000;
const PER_PAGE = ["10", "20", "50", "100"];
const FIELDS = ["id", "user", "start_time", "end_time", "order", "per_page"];

const form = document.getElementById("search");
const message = document.getElementById("message");
const body = document.querySelector("#tasks tbody");
const info = document.getElementById("page-info");
const note = document.getElementById("refresh-note");

function readQuery() {
  const args = new URLSearchParams(location.search);
  const query = {};
  for (const name of FIELDS) query[name] = args.get(name) || "";
  query.order = query.order === "old" ? "old" : "new";
  if (!PER_PAGE.includes(query.per_page)) query.per_page = "20";
  const page = Number.parseInt(args.get("page") || "1", 10);
  query.page = Number.isFinite(page) && page >= 1 ? page : 1;
  return query;
}

function fillForm(query) {
  for (const name of FIELDS) {
    const input = form.elements.namedItem(name);
    if (input) input.value = query[name];
  }
}

function pageHref(query, page) {
  const args = new URLSearchParams();
  for (const name of FIELDS) if (query[name]) args.set(name, query[name]);
  args.set("page", String(page));
  return `/?${args}`;
}

function setLink(link, href) {
  if (href) {
    link.setAttribute("href", href);
    link.removeAttribute("aria-disabled");
  } else {
    link.removeAttribute("href");
    link.setAttribute("aria-disabled", "true");
  }
}

function cell(label, ...children) {
  return el("td", { "data-label": label }, ...children);
}

function row(task, onCancel) {
  let action = "";
  if (!task.done && isId(task.id)) {
    action = el("button", { type: "button", class: "danger small", text: "Cancel" });
    action.setAttribute("aria-label", `Cancel task ${task.id}`);
    action.addEventListener("click", () => onCancel(task.id, action));
  }
  return el("tr", { "data-id": task.id, "data-done": task.done ? "true" : "false" },
    cell("Task", taskLink(task.id)),
    cell("User", String(task.user)),
    cell("Added", timeEl(task.add_time)),
    cell("Status", statusBadge(task.status)),
    cell("Executor", task.executor || "—"),
    cell("Last report", timeEl(task.report_time)),
    cell("Actions", action));
}

const query = readQuery();
fillForm(query);
let shown = "";
let loadFailed = false;

async function onCancel(id, button) {
  button.disabled = true;
  try {
    say(message, cancelMessage(id, await cancelTask(id)), "info");
  } catch (error) {
    say(message, `Task ${id} could not be cancelled: ${error.message}.`, "error");
  }
  refresher.now();
}

function render(answer) {
  const text = JSON.stringify(answer.tasks);
  if (text !== shown) {
    shown = text;
    body.replaceChildren(...answer.tasks.map((task) => row(task, onCancel)));
    if (answer.tasks.length === 0) {
      body.append(el("tr", {}, el("td", { colspan: 7, class: "empty", text: "No tasks match." })));
    }
  }
  const pages = answer.pages;
  info.textContent = pages ? `Page ${query.page} of ${pages}` : "No pages";
  setLink(document.getElementById("prev"), query.page > 1 ? pageHref(query, query.page - 1) : "");
  setLink(document.getElementById("next"), query.page < pages ? pageHref(query, query.page + 1) : "");
}

async function load() {
  let answer;
  try {
    answer = await getJSON("/api/task/list", {
      id: query.id, user: query.user, start_time: query.start_time, end_time: query.end_time,
      old_to_new: query.order === "old" ? "1" : "", limit: query.per_page, page: query.page - 1,
    });
  } catch (error) {
    loadFailed = true;
    say(message, `The task list could not be loaded: ${error.message}.`, "error");
    markLoaded("error");
    throw error;
  }
  if (answer.result !== 0) {
    const why = answer.result === 4 ? " Check the id (24 hex characters), the user (an integer) and the times." : "";
    loadFailed = true;
    say(message, `${RESULTS[answer.result] || `Result ${answer.result}.`}${why}`, "error");
    render({ tasks: [], pages: 0 });
    markLoaded("error");
    return answer.result === 1;
  }
  if (loadFailed) say(message, "");
  loadFailed = false;
  render(answer);
  const undone = answer.tasks.some((task) => !task.done);
  note.textContent = undone ? "Undone tasks shown: this list refreshes every 2 seconds." : "";
  markLoaded();
  return undone;
}

const refresher = poll(load, REFRESH_MS);
