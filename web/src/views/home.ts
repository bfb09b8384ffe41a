// The home page: search the catalog by name.
import { get, SearchAnswer } from "../lib/api";
import { h, notice } from "../lib/dom";
import type { View } from "../main";

export const home: View = (main) => {
  document.title = "kappa — search";
  const input = h("input", { id: "q", type: "search", name: "q", autocomplete: "off", placeholder: "Artist name or song title", "aria-describedby": "q-help" });
  const results = h("div", { id: "results", "aria-live": "polite" });
  let seq = 0;
  let timer = 0;
  const search = async () => {
    const q = input.value.trim();
    const mine = ++seq;
    const u = new URL(location.href);
    if (q) u.searchParams.set("q", q);
    else u.searchParams.delete("q");
    history.replaceState(null, "", u.pathname + u.search);
    if (!q) {
      results.replaceChildren();
      return;
    }
    try {
      const a = await get<SearchAnswer>("/v1/search", { q, limit: 10 });
      if (mine !== seq) return;
      results.replaceChildren(
        h("h2", {}, "Artists"),
        a.artists.length ? h("ul", { class: "hits", "data-hits": "artists" }, ...a.artists.map((x) =>
          h("li", {}, h("a", { href: `/artists/${x.artist_id}` }, x.name)))) : notice("No artist matches."),
        h("h2", {}, "Songs"),
        a.songs.length ? h("ul", { class: "hits", "data-hits": "songs" }, ...a.songs.map((x) =>
          h("li", {}, h("a", { href: `/songs/${x.song_id}` }, x.title), x.artist_name ? " — " : "",
            x.artist_name ? h("a", { href: `/artists/${x.artist_id}` }, x.artist_name) : ""))) : notice("No song matches."));
    } catch (e) {
      if (mine === seq) results.replaceChildren(notice("Search failed: " + (e as Error).message, "error"));
    }
  };
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = window.setTimeout(search, 150);
  });
  main.append(
    h("h1", {}, "Find an artist or a song"),
    h("form", { role: "search", class: "search", onsubmit: ((e: Event) => { e.preventDefault(); search(); }) as EventListener },
      h("label", { for: "q" }, "Search the catalog"), input,
      h("p", { id: "q-help", class: "help" }, "Names and titles by their start or the start of a word; case and accents do not matter.")),
    results,
    h("p", {}, "Or see the ", h("a", { href: "/top" }, "top artists by country"), "."));
  const q = new URLSearchParams(location.search).get("q");
  if (q) {
    input.value = q;
    search();
  }
  input.focus();
};
