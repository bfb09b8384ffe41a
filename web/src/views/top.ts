// The executive view: top artists over a date range, for the world or a
// country picked on the map (or in the filter bar), refreshed every 30 s.
import { CountryRow, get, orNull, Plays, Top } from "../lib/api";
import { h, notice, section } from "../lib/dom";
import * as filters from "../lib/filters";
import { country as countryName, time } from "../lib/fmt";
import { worldMap } from "../lib/maps";
import { table } from "../lib/table";
import type { View } from "../main";

const refreshEvery = 30000;
/** mapArtists is how many of the world's top artists the map sums. */
const mapArtists = 10;

export const top: View = (main) => {
  document.title = "kappa — top artists";
  const bar = h("div", {});
  const auto = h("input", { id: "auto", type: "checkbox", checked: true });
  const stamp = h("span", { class: "stamp", role: "status" });
  const body = h("div", { "aria-busy": "true" });
  main.append(h("h1", {}, "Top artists"), bar,
    h("p", { class: "refresh" }, auto, h("label", { for: "auto" }, " Refresh every 30 s"), " ", stamp), body);
  let seq = 0;
  const render = async () => {
    const mine = ++seq;
    const f = filters.read();
    bar.replaceChildren(filters.bar(f, () => render()));
    try {
      const [ranked, world] = await Promise.all([
        orNull<Top>("/v1/top/artists", { from: f.from, to: f.to, country: f.country, k: 20 }),
        orNull<Top>("/v1/top/artists", { from: f.from, to: f.to, k: mapArtists }),
      ]);
      if (mine !== seq) return;
      if (!ranked || !world) {
        body.replaceChildren(notice("The top artists need the top-K endpoint (GET /v1/top/artists), which this server does not answer."));
        return;
      }
      // The map: the plays of the world's top artists, by country.
      const per = await Promise.all(world.top.map((r) =>
        get<Plays<CountryRow>>(`/v1/artists/${r.artist_id}/plays`, { from: f.from, to: f.to, by: "country" })));
      if (mine !== seq) return;
      const values = new Map<string, number>();
      for (const a of per) for (const r of a.rows) if (r.country) values.set(r.country, (values.get(r.country) ?? 0) + r.plays);
      const pick = (c: string) => {
        filters.write({ ...f, country: c === f.country ? "" : c });
        render();
      };
      body.replaceChildren(h("div", { class: "split" },
        section(`Plays of the world's top ${world.top.length} artists, by country`, "map",
          h("p", { class: "help" }, "Select a country on the map or in the filter bar to rank its artists."),
          worldMap("world", "Plays of the top artists by country", values, { selected: f.country, onSelect: pick })),
        section(f.country ? `Top artists in ${countryName(f.country)}` : "Top artists worldwide", "ranking",
          table({
            name: "top-artists", caption: `Top artists by plays, ${f.from} to ${f.to}`, rows: ranked.top,
            columns: [
              { key: "rank", label: "Rank", value: (r) => ranked.top.indexOf(r) + 1, numeric: true },
              { key: "artist", label: "Artist", value: (r) => r.artist_name || `Artist ${r.artist_id}`, cell: (r) => h("a", { href: `/artists/${r.artist_id}?range=${f.range}${f.range === "custom" ? `&from=${f.from}&to=${f.to}` : ""}${f.country ? "&country=" + f.country : ""}` }, r.artist_name || `Artist ${r.artist_id}`) },
              { key: "artist_id", label: "Artist id", value: (r) => r.artist_id!, numeric: true },
              { key: "plays", label: "Plays", value: (r) => r.plays, numeric: true },
              { key: "streams", label: "Streams", value: (r) => r.streams, numeric: true },
            ],
          }))));
      stamp.textContent = "Updated " + time(new Date());
    } catch (e) {
      if (mine === seq) body.replaceChildren(notice("Could not load: " + (e as Error).message, "error"));
    } finally {
      if (mine === seq) body.setAttribute("aria-busy", "false");
    }
  };
  render();
  const timer = window.setInterval(() => {
    if (auto.checked && document.visibilityState === "visible") render();
  }, refreshEvery);
  return () => {
    seq++;
    clearInterval(timer);
  };
};
