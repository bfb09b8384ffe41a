// Maps: the world choropleth of plays by country and the H3 hexagon map
// of fan zones, both SVG through d3-geo, the world from world-atlas 110m.
import { geoNaturalEarth1, geoMercator, geoPath, geoGraticule10 } from "d3-geo";
import type { Feature, FeatureCollection, Geometry, Polygon } from "geojson";
import { feature } from "topojson-client";
import type { Topology, GeometryCollection } from "topojson-specification";
import world from "world-atlas/countries-110m.json";
import { cellToBoundary } from "h3-js";
import { svg, h } from "./dom";
import { byNumeric } from "./countries";
import { country as countryName, num } from "./fmt";

type CountryProps = { name: string };

const topo = world as unknown as Topology<{ countries: GeometryCollection<CountryProps> }>;
const countries = feature(topo, topo.objects.countries) as FeatureCollection<Geometry, CountryProps>;

/** shade maps v in [0, max] to a blue (light for little, dark for much). */
export function shade(v: number, max: number): string {
  if (!(v > 0) || !(max > 0)) return "#f1f1f1";
  const t = Math.sqrt(v / max);
  const lo = [222, 235, 247], hi = [8, 48, 107];
  const c = lo.map((l, i) => Math.round(l + (hi[i] - l) * t));
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}

/**
 * worldMap colours each country by values (alpha-2 → plays). Each
 * country's path has data-country and data-value; clicking one (or
 * pressing Enter on it) calls onSelect.
 */
export function worldMap(name: string, label: string, values: Map<string, number>, opts: { selected?: string; onSelect?: (code: string) => void } = {}): HTMLElement {
  const w = 760, ht = 400;
  const proj = geoNaturalEarth1().fitExtent([[4, 4], [w - 4, ht - 4]], { type: "Sphere" });
  const path = geoPath(proj);
  const max = Math.max(0, ...values.values());
  const root = svg("svg", { viewBox: `0 0 ${w} ${ht}`, class: "map", role: "img", "aria-label": label + " (the values are in the table)" });
  root.append(svg("path", { d: path({ type: "Sphere" }) ?? "", class: "sphere" }));
  root.append(svg("path", { d: path(geoGraticule10()) ?? "", class: "graticule" }));
  for (const f of countries.features) {
    const code = byNumeric.get(String(f.id ?? ""));
    const v = code ? values.get(code) ?? 0 : 0;
    const p = svg("path", {
      d: path(f) ?? "", class: "country" + (code && code === opts.selected ? " selected" : ""),
      fill: shade(v, max), "data-country": code ?? null, "data-value": code ? v : null,
    });
    p.append(svg("title", {}, `${code ? countryName(code) : f.properties.name}: ${num(v)}`));
    if (code && opts.onSelect) {
      p.addEventListener("click", () => opts.onSelect!(code));
    }
    root.append(p);
  }
  return h("figure", { class: "map-box", "data-map": name }, root, legend(max));
}

function legend(max: number): HTMLElement {
  const stops = [0, 0.25, 0.5, 1].map((t) => Math.round(max * t * t));
  return h("figcaption", { class: "legend" }, ...stops.map((v) => h("span", {},
    h("i", { style: `background:${shade(v, max)}` }), num(v))));
}

/**
 * cellFeature is an H3 cell's outline as GeoJSON for d3-geo. NB: h3
 * gives the ring counter-clockwise (RFC 7946); d3-geo reads spherical
 * polygons clockwise, and draws a counter-clockwise ring as the whole
 * globe minus the cell. So the ring is reversed.
 */
export function cellFeature(cell: string): Feature<Polygon> {
  const ring = cellToBoundary(cell, true);
  if (ring.length && (ring[0][0] !== ring[ring.length - 1][0] || ring[0][1] !== ring[ring.length - 1][1])) ring.push(ring[0]);
  return { type: "Feature", properties: { cell }, geometry: { type: "Polygon", coordinates: [ring.reverse()] } };
}

/** hexMap draws the cells (cell → fans), zoomed to them, over the countries. */
export function hexMap(name: string, label: string, cells: { cell: string; fans: number }[]): HTMLElement {
  const w = 760, ht = 480;
  const feats = cells.map((c) => cellFeature(c.cell));
  const fc: FeatureCollection<Polygon> = { type: "FeatureCollection", features: feats };
  const proj = geoMercator();
  if (feats.length) proj.fitExtent([[16, 16], [w - 16, ht - 16]], fc);
  else proj.fitExtent([[16, 16], [w - 16, ht - 16]], countries);
  const path = geoPath(proj);
  const max = Math.max(0, ...cells.map((c) => c.fans));
  const root = svg("svg", { viewBox: `0 0 ${w} ${ht}`, class: "map hex", role: "img", "aria-label": label + " (the cells are in the table)" });
  const land = svg("g", { class: "land" });
  for (const f of countries.features) land.append(svg("path", { d: path(f) ?? "", class: "country" }));
  root.append(land);
  cells.forEach((c, i) => {
    const fill = shade(c.fans, max);
    const p = svg("path", { d: path(feats[i]) ?? "", class: "cell", fill, "data-cell": c.cell, "data-value": c.fans });
    p.append(svg("title", {}, `${c.cell}: ${num(c.fans)} fans`));
    root.append(p);
    // A cell smaller than a few pixels (cells far apart) gets a dot too.
    const [[x0, y0], [x1, y1]] = path.bounds(feats[i]);
    if (Math.max(x1 - x0, y1 - y0) < 4) {
      const [cx, cy] = path.centroid(feats[i]);
      root.append(svg("circle", { cx, cy, r: 3, class: "cell-dot", fill, "aria-hidden": "true" }));
    }
  });
  return h("figure", { class: "map-box", "data-map": name }, root, legend(max));
}
