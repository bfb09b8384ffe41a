// The dashboards' entry: one page, routed by the path (the server answers
// every page route with this bundle's index).
import "./style.css";
import { h } from "./lib/dom";
import { home } from "./views/home";
import { artist } from "./views/artist";
import { song } from "./views/song";
import { live } from "./views/live";
import { fanZones } from "./views/fanzones";
import { top } from "./views/top";

/** A view renders into main; it returns a cleanup run before the next view. */
export type View = (main: HTMLElement, params: Record<string, string>) => (() => void) | void;

const routes: [RegExp, View][] = [
  [/^\/$/, home],
  [/^\/top$/, top],
  [/^\/artists\/(?<id>\d+)$/, artist],
  [/^\/artists\/(?<id>\d+)\/fan-zones$/, fanZones],
  [/^\/songs\/(?<id>\d+)$/, song],
  [/^\/songs\/(?<id>\d+)\/live$/, live],
];

let cleanup: (() => void) | void;

function route(): void {
  const main = document.getElementById("main")!;
  if (cleanup) cleanup();
  main.replaceChildren();
  for (const [re, view] of routes) {
    const m = re.exec(location.pathname);
    if (m) {
      cleanup = view(main, m.groups ?? {});
      return;
    }
  }
  cleanup = undefined;
  main.append(h("h1", {}, "Not found"), h("p", {}, "No page at " + location.pathname + ". ", h("a", { href: "/" }, "Search the catalog")));
}

// Links inside the app navigate without a reload.
document.addEventListener("click", (e) => {
  const a = (e.target as Element).closest("a");
  if (!a || a.target || a.hasAttribute("download") || e.metaKey || e.ctrlKey || e.shiftKey || a.origin !== location.origin) return;
  e.preventDefault();
  history.pushState(null, "", a.pathname + a.search);
  route();
  window.scrollTo(0, 0);
});
window.addEventListener("popstate", route);
route();
