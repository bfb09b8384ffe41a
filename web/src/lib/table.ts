// Data tables: every chart has one. Sortable by any column, exportable
// as CSV. Numeric cells carry their raw value in data-value.
import { h } from "./dom";
import { num } from "./fmt";

export interface Column<R> {
  key: string;
  label: string;
  /** value is what the column sorts by and exports. */
  value: (r: R) => string | number;
  /** cell renders the value (default: numbers through Intl, text as is). */
  cell?: (r: R) => Node | string;
  numeric?: boolean;
}

export interface TableOpts<R> {
  name: string;
  caption: string;
  columns: Column<R>[];
  rows: R[];
  /** csv names the export file; no export when absent. */
  csv?: string;
  sort?: { key: string; desc: boolean };
}

function csvField(v: string | number): string {
  const s = String(v);
  return /[",\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
}

/** toCSV renders rows as CSV with a header line. */
export function toCSV<R>(columns: Column<R>[], rows: R[]): string {
  return [columns.map((c) => csvField(c.label)), ...rows.map((r) => columns.map((c) => csvField(c.value(r))))]
    .map((l) => l.join(",")).join("\n") + "\n";
}

/** table renders a sortable data table; the wrapper holds the CSV button. */
export function table<R>(o: TableOpts<R>): HTMLElement {
  let sort = o.sort;
  const wrap = h("div", { class: "table-wrap", "data-table": o.name });
  const render = () => {
    const rows = [...o.rows];
    if (sort) {
      const col = o.columns.find((c) => c.key === sort!.key)!;
      const dir = sort.desc ? -1 : 1;
      rows.sort((a, b) => {
        const x = col.value(a), y = col.value(b);
        return dir * (typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y)));
      });
    }
    const head = h("tr", {}, ...o.columns.map((c) => {
      const active = sort?.key === c.key;
      const btn = h("button", { type: "button", class: "sort", "data-sort": c.key }, c.label);
      btn.addEventListener("click", () => {
        sort = { key: c.key, desc: active ? !sort!.desc : !!c.numeric };
        render();
      });
      return h("th", { scope: "col", class: c.numeric ? "num" : "", "aria-sort": active ? (sort!.desc ? "descending" : "ascending") : "none" }, btn);
    }));
    const body = rows.map((r) => h("tr", {}, ...o.columns.map((c) => {
      const v = c.value(r);
      const content = c.cell ? c.cell(r) : typeof v === "number" ? num(v) : v;
      return h("td", { class: c.numeric ? "num" : "", "data-col": c.key, 
        "data-value": typeof v === "number" ? v : null, "data-text": typeof v === "string" ? v : null }, content);
    })));
    const t = h("table", {}, h("caption", {}, o.caption), h("thead", {}, head),
      h("tbody", {}, ...(body.length ? body : [h("tr", {}, h("td", { colspan: o.columns.length, class: "empty" }, "No data"))])));
    const tools = o.csv ? h("button", { type: "button", class: "csv", "data-csv": o.name }, "Download CSV") : null;
    tools?.addEventListener("click", () => {
      const blob = new Blob([toCSV(o.columns, rows)], { type: "text/csv" });
      const a = h("a", { href: URL.createObjectURL(blob), download: o.csv! });
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 1000);
    });
    wrap.replaceChildren(...(tools ? [tools] : []), h("div", { class: "scroll" }, t));
  };
  render();
  return wrap;
}
