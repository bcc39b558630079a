// Helpers of the problems pages: a problem id in a URL, limits in words, a package upload.
// Every change goes through API v2 (/api/v2/problems…), which decides what a key may do; the
// pages only show its answers (a refusal with the server's own reason).

import { fmtBytes, v2, v2Error } from "./common.js";

// The ids API v2 gives problems: only those are put into a URL (no escaping needed).
const PROBLEM_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function isProblemId(text) {
  return typeof text === "string" && PROBLEM_RE.test(text);
}

export function fmtLimitSeconds(value) {
  const n = Number(value);
  return Number.isFinite(n) ? `${Number(n.toFixed(3))} s` : "—";
}

// "python3 × 2, java × 1.5", or "none".
export function fmtFactors(factors) {
  const entries = Object.entries(factors || {});
  if (!entries.length) return "none";
  return entries.map(([language, factor]) => `${language} × ${Number(factor)}`).join(", ");
}

export function limitsLine(limits) {
  const l = limits || {};
  return `${fmtLimitSeconds(l.time)} CPU per case, ${fmtBytes(l.memory)}`;
}

// The sentence of a refused request, with what was kept.
export function refusal(answer, kept) {
  const reason = v2Error(answer);
  return `Refused (HTTP ${answer.status}): ${reason}${/[.!?]$/.test(reason) ? "" : "."} ${kept}`;
}

// POSTs a zip as a new version of `id`; the answer { status, body }.
export function uploadPackage(id, file, format) {
  const query = new URLSearchParams({ format: format || "auto" });
  return v2(`/api/v2/problems/${id}/versions?${query}`, {
    method: "POST", body: file, headers: { "Content-Type": "application/zip" },
  });
}
