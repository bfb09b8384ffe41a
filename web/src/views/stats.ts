// The plays dashboard of an artist or a song: filter bar, KPI cards,
// daily series, plays by country (map and table), and the extra panels
// of each kind.
import { CountryRow, DayRow, get, Plays } from "../lib/api";
import { h, notice, section } from "../lib/dom";
import * as filters from "../lib/filters";
import { Filters } from "../lib/filters";
import { addDays, country as countryName, day, daysOf, num, pct, signedPct, time, today } from "../lib/fmt";
import { chart } from "../lib/chart";
import { table } from "../lib/table";
import { worldMap } from "../lib/maps";

export type Kind = "artists" | "songs";

/** lookback is how far back "since release" looks for the first plays. */
const lookback = 365;

/** releaseDay is the first day with plays in the last year, or undefined. */
export async function releaseDay(kind: Kind, id: string): Promise<string | undefined> {
  const a = await get<Plays<DayRow>>(`/v1/${kind}/${id}/plays`, { from: addDays(today(), 1 - lookback), to: today(), by: "day" });
  return a.rows.find((r) => r.plays > 0)?.day;
}

/** kpis renders the KPI cards of the period and the previous one. */
function kpis(cur: Plays<DayRow>, prev: Plays<DayRow>, asOf: Date): HTMLElement {
  const card = (key: string, label: string, value: string, raw: number | null, sub?: string) =>
    h("div", { class: "kpi", "data-kpi": key, "data-value": raw },
      h("div", { class: "kpi-label" }, label), h("div", { class: "kpi-value" }, value), sub ? h("div", { class: "kpi-sub" }, sub) : null);
  const change = (c: number, p: number) => (p > 0 ? signedPct((c - p) / p) : c > 0 ? "new" : "–");
  const ratio = cur.plays > 0 ? cur.streams / cur.plays : 0;
  return h("div", { class: "kpis" },
    card("plays", "Plays", num(cur.plays), cur.plays, `${change(cur.plays, prev.plays)} vs previous period (${num(prev.plays)})`),
    card("streams", "Royalty-eligible streams", num(cur.streams), cur.streams, `${change(cur.streams, prev.streams)} vs previous period (${num(prev.streams)})`),
    card("ratio", "Streams per play", pct(ratio), ratio),
    card("asof", "As of", time(asOf), null, `${day(cur.from)} – ${day(cur.to)}`));
}

/** daily renders the daily series (every day of the range, 0 when absent) and the API's rows as a table. */
export function daily(a: Plays<DayRow>): HTMLElement[] {
  const days = daysOf(a.from, a.to);
  const by = new Map(a.rows.map((r) => [r.day, r]));
  const x = days.map((d) => Date.parse(d + "T00:00:00Z") / 1000);
  return [
    chart("daily", "Plays and streams per day", x, [
      { label: "Plays", values: days.map((d) => by.get(d)?.plays ?? 0), color: "#1f5fa8" },
      { label: "Streams", values: days.map((d) => by.get(d)?.streams ?? 0), color: "#b34700" },
    ]),
    table<DayRow>({
      name: "by-day", caption: "Plays and streams per day (UTC)", rows: a.rows, csv: "plays-by-day.csv",
      columns: [
        { key: "day", label: "Day", value: (r) => r.day },
        { key: "plays", label: "Plays", value: (r) => r.plays, numeric: true },
        { key: "streams", label: "Streams", value: (r) => r.streams, numeric: true },
      ],
    }),
  ];
}

/** byCountry renders the choropleth and the sortable table of the by=country answer. */
function byCountry(a: Plays<CountryRow>, selected: string, select: (c: string) => void): HTMLElement {
  const values = new Map(a.rows.filter((r) => r.country).map((r) => [r.country!, r.plays]));
  return h("div", { class: "split" },
    worldMap("countries", "Plays by country", values, { selected, onSelect: select }),
    table<CountryRow>({
      name: "by-country", caption: "Plays and streams by country", rows: a.rows, csv: "plays-by-country.csv",
      sort: { key: "plays", desc: true },
      columns: [
        { key: "country", label: "Country", value: (r) => r.country ?? "", cell: (r) => r.country ? `${countryName(r.country)} (${r.country})` : "Unknown" },
        { key: "plays", label: "Plays", value: (r) => r.plays, numeric: true },
        { key: "streams", label: "Streams", value: (r) => r.streams, numeric: true },
      ],
    }));
}

/**
 * stats mounts the dashboard of one artist or song into main. header
 * renders the title from the period's answer; extra renders the kind's
 * own panels for the filters.
 */
export function stats(main: HTMLElement, kind: Kind, id: string,
  header: (a: Plays<DayRow>) => Node[],
  extra: (f: Filters) => Promise<HTMLElement[]>): () => void {
  const head = h("header", { class: "view-head" }, h("h1", {}, kind === "artists" ? `Artist ${id}` : `Song ${id}`));
  const bar = h("div", {});
  const body = h("div", { class: "view-body", "aria-busy": "true" });
  main.append(head, bar, body);
  let seq = 0;
  const render = async () => {
    const mine = ++seq;
    const want = new URLSearchParams(location.search).get("range");
    const release = want === "release" ? await releaseDay(kind, id).catch(() => undefined) : undefined;
    const f = filters.read(release);
    bar.replaceChildren(filters.bar(f, () => render(), { release: true }));
    body.setAttribute("aria-busy", "true");
    try {
      const prev = filters.previous(f);
      const base = `/v1/${kind}/${id}/plays`;
      const [cur, before, countries, more] = await Promise.all([
        get<Plays<DayRow>>(base, { from: f.from, to: f.to, by: "day", country: f.country }),
        get<Plays<DayRow>>(base, { from: prev.from, to: prev.to, by: "day", country: f.country }),
        get<Plays<CountryRow>>(base, { from: f.from, to: f.to, by: "country" }),
        extra(f),
      ]);
      if (mine !== seq) return;
      const asOf = new Date();
      head.replaceChildren(...header(cur));
      document.title = `kappa — ${head.textContent}`;
      const selectCountry = (c: string) => {
        filters.write({ ...f, country: c === f.country ? "" : c });
        render();
      };
      body.replaceChildren(
        release === undefined && want === "release" ? notice("No plays in the last year: showing the last 90 days.") : "",
        section(f.country ? `Totals in ${countryName(f.country)}` : "Totals", "totals", kpis(cur, before, asOf)),
        section(f.country ? `Daily plays in ${countryName(f.country)}` : "Daily plays", "daily", ...daily(cur)),
        section("Plays by country", "countries", byCountry(countries, f.country, selectCountry)),
        ...more);
    } catch (e) {
      if (mine === seq) body.replaceChildren(notice("Could not load: " + (e as Error).message, "error"));
    } finally {
      if (mine === seq) body.setAttribute("aria-busy", "false");
    }
  };
  render();
  return () => {
    seq++;
  };
}
