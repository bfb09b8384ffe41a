// The artist view: the plays dashboard plus the artist's top songs.
import { orNull, Top } from "../lib/api";
import { h, notice, section } from "../lib/dom";
import { table } from "../lib/table";
import type { View } from "../main";
import { stats } from "./stats";

export const artist: View = (main, { id }) =>
  stats(main, "artists", id,
    (a) => [
      h("h1", {}, a.artist_name || `Artist ${id}`),
      h("nav", { "aria-label": "Artist pages" }, h("a", { href: `/artists/${id}/fan-zones` }, "Fan zones"), " · ", h("a", { href: "/" }, "Search")),
    ],
    async (f) => {
      const top = await orNull<Top>("/v1/top/songs", { from: f.from, to: f.to, artist_id: id, country: f.country, k: 10 });
      if (!top) {
        return [section("Top songs", "top-songs", notice("Top songs need the top-K endpoint (GET /v1/top/songs), which this server does not answer."))];
      }
      return [section("Top songs", "top-songs", table({
        name: "top-songs", caption: "The artist's top songs by plays in the period", rows: top.top,
        columns: [
          { key: "rank", label: "Rank", value: (r) => top.top.indexOf(r) + 1, numeric: true },
          { key: "song", label: "Song", value: (r) => r.title || `Song ${r.song_id}`, cell: (r) => h("a", { href: `/songs/${r.song_id}` }, r.title || `Song ${r.song_id}`) },
          { key: "song_id", label: "Song id", value: (r) => r.song_id!, numeric: true },
          { key: "plays", label: "Plays", value: (r) => r.plays, numeric: true },
          { key: "streams", label: "Streams", value: (r) => r.streams, numeric: true },
        ],
      }))];
    });
