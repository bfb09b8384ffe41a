// The filter bar: date range (presets or custom) and country, kept in the
// URL's query string so that a link reproduces the view.
import { h } from "./dom";
import { alpha2 } from "./countries";
import { addDays, country as countryName, daysBetween, today } from "./fmt";

export type Preset = "7d" | "28d" | "90d" | "release" | "custom";

export interface Filters {
  from: string;
  to: string;
  country: string;
  range: Preset;
}

const presetDays: Record<string, number> = { "7d": 7, "28d": 28, "90d": 90 };
const dayRe = /^\d{4}-\d{2}-\d{2}$/;

/**
 * read takes the filters from the URL: from/to when both are valid days
 * (a custom range unless range= says otherwise), else the range preset
 * (default 28 days to today). "since release" needs release, the first
 * day with plays, found by the view.
 */
export function read(release?: string): Filters {
  const q = new URLSearchParams(location.search);
  const c = (q.get("country") ?? "").toUpperCase();
  const country = alpha2.includes(c) ? c : "";
  let range = (q.get("range") ?? "") as Preset | "";
  const from = q.get("from") ?? "";
  const to = q.get("to") ?? "";
  if (dayRe.test(from) && dayRe.test(to) && from <= to && (range === "" || range === "custom")) {
    return { from, to, country, range: "custom" };
  }
  const end = today();
  if (range === "release") {
    return { from: release && release <= end ? release : addDays(end, -89), to: end, country, range };
  }
  const preset: Preset = range in presetDays ? (range as Preset) : "28d";
  return { from: addDays(end, 1 - presetDays[preset]), to: end, country, range: preset };
}

/** write puts f in the URL (a new history entry). */
export function write(f: Filters, extra: Record<string, string> = {}): void {
  const q = new URLSearchParams(location.search);
  for (const k of ["from", "to", "range", "country"]) q.delete(k);
  if (f.range === "custom") {
    q.set("from", f.from);
    q.set("to", f.to);
  } else {
    q.set("range", f.range);
  }
  if (f.country) q.set("country", f.country);
  for (const [k, v] of Object.entries(extra)) {
    if (v) q.set(k, v);
    else q.delete(k);
  }
  history.pushState(null, "", location.pathname + "?" + q.toString());
}

/** previous is the period of the same length just before f's. */
export function previous(f: Filters): { from: string; to: string } {
  const n = daysBetween(f.from, f.to) + 1;
  return { from: addDays(f.from, -n), to: addDays(f.from, -1) };
}

/** bar renders the filter bar; onChange gets the new filters (already in the URL). */
export function bar(f: Filters, onChange: (f: Filters) => void, opts: { release?: boolean; country?: boolean } = {}): HTMLElement {
  const range = h("select", { id: "f-range", name: "range" },
    ...(["7d", "28d", "90d", ...(opts.release ? ["release"] : []), "custom"] as Preset[]).map((p) =>
      h("option", { value: p, selected: p === f.range }, { "7d": "Last 7 days", "28d": "Last 28 days", "90d": "Last 90 days", release: "Since release", custom: "Custom" }[p])));
  const from = h("input", { id: "f-from", name: "from", type: "date", value: f.from, max: today() });
  const to = h("input", { id: "f-to", name: "to", type: "date", value: f.to, max: today() });
  const ctry = h("select", { id: "f-country", name: "country" },
    h("option", { value: "", selected: f.country === "" }, "All countries"),
    ...alpha2.map((c) => [c, countryName(c)]).sort((a, b) => a[1].localeCompare(b[1])).map(([c, name]) =>
      h("option", { value: c, selected: c === f.country }, name)));
  const changed = (custom: boolean) => {
    let next: Filters;
    if (custom) {
      if (!dayRe.test(from.value) || !dayRe.test(to.value) || from.value > to.value) return;
      next = { from: from.value, to: to.value, country: ctry.value, range: "custom" };
    } else {
      next = { ...f, range: range.value as Preset, country: ctry.value };
      if (next.range === "custom") next = { ...next, from: from.value, to: to.value };
    }
    write(next);
    onChange(read());
  };
  range.addEventListener("change", () => changed(false));
  from.addEventListener("change", () => changed(true));
  to.addEventListener("change", () => changed(true));
  ctry.addEventListener("change", () => changed(false));
  return h("form", { class: "filters", role: "search", "aria-label": "Filters", onsubmit: ((e: Event) => e.preventDefault()) as EventListener },
    h("label", { for: "f-range" }, "Range"), range,
    h("label", { for: "f-from" }, "From"), from,
    h("label", { for: "f-to" }, "To"), to,
    ...(opts.country === false ? [] : [h("label", { for: "f-country" }, "Country"), ctry]),
    h("span", { class: "utc" }, "Days in UTC"));
}
