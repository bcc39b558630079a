// The judicators page (/judicators): GET /api/judicators, refreshed every few seconds.
import { el } from "./common.js";
import { showListing } from "./listing.js";

showListing({
  url: "/api/judicators",
  key: "judicators",
  what: "judicators",
  count: (n) => `${n} judicator${n === 1 ? "" : "s"} known.`,
  cells: (j) => [
    el("td", { "data-label": "Name", class: "mono", text: j.name }),
    el("td", { "data-label": "Address", class: "mono", text: j.address }),
  ],
  empty: "No judicator known.",
  refreshMs: 5000,
});
