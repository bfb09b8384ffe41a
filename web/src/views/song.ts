// The song view: the plays dashboard, similar songs, and the launch
// comparison (two songs' plays by days since their release).
import { DayRow, get, orNull, Plays, Similar } from "../lib/api";
import { h, notice, section } from "../lib/dom";
import { chart } from "../lib/chart";
import { addDays, daysOf, num, today } from "../lib/fmt";
import { table } from "../lib/table";
import type { View } from "../main";
import { stats } from "./stats";

/** launchDays is how many days after release the comparison shows. */
const launchDays = 90;

/** launch is a song's plays by day since its first day with plays in the last year. */
async function launch(id: string): Promise<{ title: string; plays: number[]; release?: string }> {
  const a = await get<Plays<DayRow>>(`/v1/songs/${id}/plays`, { from: addDays(today(), -364), to: today(), by: "day" });
  const first = a.rows.find((r) => r.plays > 0)?.day;
  const by = new Map(a.rows.map((r) => [r.day, r.plays]));
  const days = first ? daysOf(first, today()).slice(0, launchDays) : [];
  return { title: a.title || `Song ${id}`, plays: days.map((d) => by.get(d) ?? 0), release: first };
}

async function compare(id: string, other: string): Promise<HTMLElement[]> {
  const [a, b] = await Promise.all([launch(id), launch(other)]);
  const n = Math.max(a.plays.length, b.plays.length);
  const x = Array.from({ length: n }, (_, i) => i);
  const val = (s: number[], i: number) => (i < s.length ? s[i] : null);
  const rows = x.map((i) => ({ day: i, a: val(a.plays, i), b: val(b.plays, i) }));
  return [
    h("p", {}, `${a.title}: released ${a.release ?? "–"}; ${b.title}: released ${b.release ?? "–"} (first day with plays, UTC).`),
    n ? chart("launch", "Plays by days since release", x, [
      { label: a.title, values: x.map((i) => val(a.plays, i)), color: "#1f5fa8" },
      { label: b.title, values: x.map((i) => val(b.plays, i)), color: "#b34700" },
    ], { xLabel: "Day" }) : notice("Neither song has plays in the last year."),
    table({
      name: "launch", caption: "Plays by days since release", rows, csv: "launch.csv",
      columns: [
        { key: "day", label: "Days since release", value: (r) => r.day, numeric: true },
        { key: "a", label: a.title, value: (r) => r.a ?? "", numeric: true },
        { key: "b", label: b.title, value: (r) => r.b ?? "", numeric: true },
      ],
    }),
  ];
}

export const song: View = (main, { id }) =>
  stats(main, "songs", id,
    (a) => [
      h("h1", {}, a.title || `Song ${id}`),
      h("nav", { "aria-label": "Song pages" },
        a.artist_name ? h("span", {}, "by ", a.artist_id ? h("a", { href: `/artists/${a.artist_id}` }, a.artist_name) : a.artist_name) : "",
        a.artist_name ? " · " : "", h("a", { href: `/songs/${id}/live` }, "Live"), " · ", h("a", { href: "/" }, "Search")),
    ],
    async () => {
      const other = new URLSearchParams(location.search).get("compare") ?? "";
      const input = h("input", { id: "compare", name: "compare", inputmode: "numeric", pattern: "[0-9]+", value: other, size: 12 });
      const form = h("form", { class: "compare-form" },
        h("label", { for: "compare" }, "Compare the launch with song id"), input, h("button", { type: "submit" }, "Compare"));
      form.addEventListener("submit", (e) => {
        e.preventDefault();
        const u = new URL(location.href);
        if (/^\d+$/.test(input.value)) u.searchParams.set("compare", input.value);
        else u.searchParams.delete("compare");
        history.pushState(null, "", u.pathname + u.search);
        dispatchEvent(new PopStateEvent("popstate"));
      });
      const [sim, cmp] = await Promise.all([
        orNull<Similar>(`/v1/songs/${id}/similar`, { k: 10 }).catch(() => null),
        /^\d+$/.test(other) ? compare(id, other) : Promise.resolve([] as HTMLElement[]),
      ]);
      const out = [section("Launch", "launch", form, ...cmp)];
      if (sim) {
        out.push(section("Similar songs", "similar", table({
          name: "similar", caption: "Songs with the most similar features (cosine)", rows: sim.similar,
          columns: [
            { key: "song_id", label: "Song", value: (r) => r.song_id, cell: (r) => h("a", { href: `/songs/${r.song_id}` }, `Song ${num(r.song_id)}`) },
            { key: "score", label: "Score", value: (r) => r.score, cell: (r) => r.score.toFixed(3), numeric: true },
          ],
        })));
      }
      return out;
    });
