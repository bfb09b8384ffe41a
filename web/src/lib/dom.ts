// Small DOM builders: h for HTML elements, svg for SVG elements.

export type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

function apply(el: Element, attrs: Attrs): void {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (typeof v === "function") {
      el.addEventListener(k.replace(/^on/, ""), v);
    } else {
      el.setAttribute(k, v === true ? "" : String(v));
    }
  }
}

function append(el: Element, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === "number" ? String(c) : c);
  }
}

/** h builds an HTML element with attributes (on* keys are listeners) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

/** svg builds an SVG element. */
export function svg(tag: string, attrs: Attrs = {}, ...children: Child[]): SVGElement {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  apply(el, attrs);
  append(el, children);
  return el as SVGElement;
}

/** section is a titled panel of a view. */
export function section(title: string, id: string, ...children: Child[]): HTMLElement {
  return h("section", { class: "panel", "aria-labelledby": id + "-title", id }, h("h2", { id: id + "-title" }, title), ...children);
}

/** notice is a status line (errors and empty states), announced politely. */
export function notice(text: string, kind: "info" | "error" = "info"): HTMLElement {
  return h("p", { class: "notice " + kind, role: kind === "error" ? "alert" : "status" }, text);
}
