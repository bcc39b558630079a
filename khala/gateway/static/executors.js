// The executors page (/executors): GET /api/executors, refreshed every few seconds.
import { el, timeEl } from "./common.js";
import { showListing } from "./listing.js";

showListing({
  url: "/api/executors",
  key: "executors",
  what: "executors",
  count: (n) => `${n} executor${n === 1 ? "" : "s"} at work.`,
  cells: (e) => [
    el("td", { "data-label": "Hostname", text: e.hostname }),
    el("td", { "data-label": "Id", class: "mono", text: e.id }),
    el("td", { "data-label": "Last report" }, timeEl(e.report_time)),
  ],
  empty: "No executor at work.",
  refreshMs: 3000,
});
