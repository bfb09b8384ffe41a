// The fan zones view: an artist's H3 cells with at least min_fans fans,
// on a hexagon map zoomed to them and in a table.
import { FanZones, get, Zone } from "../lib/api";
import { h, notice, section } from "../lib/dom";
import { hexMap } from "../lib/maps";
import { table } from "../lib/table";
import type { View } from "../main";

/** maxCells bounds the cells fetched and drawn (the ones with the most fans). */
const maxCells = 2000;
const resolutions = [5, 6, 7, 8, 9];

export const fanZones: View = (main, { id }) => {
  document.title = `kappa — fan zones of artist ${id}`;
  const q = new URLSearchParams(location.search);
  const res = resolutions.includes(Number(q.get("res"))) ? Number(q.get("res")) : 7;
  const minFans = Math.max(1, Number(q.get("min_fans")) || 10);
  const resSel = h("select", { id: "res", name: "res" }, ...resolutions.map((r) => h("option", { value: r, selected: r === res }, String(r))));
  const minIn = h("input", { id: "min_fans", name: "min_fans", type: "number", min: 1, value: minFans, size: 6 });
  const form = h("form", { class: "filters", "aria-label": "Fan zone filters" },
    h("label", { for: "res" }, "H3 resolution"), resSel,
    h("label", { for: "min_fans" }, "Minimum fans"), minIn,
    h("button", { type: "submit" }, "Show"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    history.pushState(null, "", `${location.pathname}?res=${resSel.value}&min_fans=${Math.max(1, Number(minIn.value) || 1)}`);
    dispatchEvent(new PopStateEvent("popstate"));
  });
  resSel.addEventListener("change", () => form.requestSubmit());
  const title = h("h1", {}, `Fan zones of artist ${id}`);
  const body = h("div", { "aria-busy": "true" });
  main.append(title, h("nav", { "aria-label": "Artist pages" }, h("a", { href: `/artists/${id}` }, "Artist dashboard"), " · ", h("a", { href: "/" }, "Search")),
    form, body);
  let live = true;
  (async () => {
    try {
      const zones: Zone[] = [];
      let cursor: string | undefined;
      do {
        const page = await get<FanZones>(`/v1/artists/${id}/fan-zones`, { res, min_fans: minFans, limit: maxCells - zones.length, cursor });
        zones.push(...page.zones);
        cursor = page.next;
      } while (cursor && zones.length < maxCells);
      // NB: a full page may be followed by more cells, with or without a cursor.
      const more = zones.length >= maxCells;
      if (!live) return;
      body.replaceChildren(
        more ? notice(`Showing the ${zones.length} cells with the most fans.`) : "",
        section(`${zones.length} cells at resolution ${res} with at least ${minFans} fans`, "zones",
          h("div", { class: "split" },
            hexMap("zones", "Fan zones", zones),
            table<Zone>({
              name: "zones", caption: "Cells by fans", rows: zones, csv: "fan-zones.csv",
              columns: [
                { key: "cell", label: "H3 cell", value: (r) => r.cell, cell: (r) => h("code", {}, r.cell) },
                { key: "fans", label: "Fans", value: (r) => r.fans, numeric: true },
              ],
            }))));
    } catch (e) {
      if (live) body.replaceChildren(notice("Could not load the fan zones: " + (e as Error).message, "error"));
    } finally {
      body.setAttribute("aria-busy", "false");
    }
  })();
  return () => {
    live = false;
  };
};
