// The live drop view: plays and listeners of the current minute and the
// last 60 minutes. The page reads the 60 minutes once, then the server
// pushes the newest three (server-sent events; polled when the stream
// cannot be kept open), which the page merges in: a minute stops
// changing once the watermark has passed its end plus the grace (one
// minute by default), so three cover every minute still changing, and
// each update is a few hundred bytes instead of the whole hour.
import { get, Live, LiveWindow } from "../lib/api";
import { h, notice, section } from "../lib/dom";
import { chart } from "../lib/chart";
import { num, time } from "../lib/fmt";
import { table } from "../lib/table";
import type { View } from "../main";

const shown = 60;
const pushed = 3;
/** pollEvery is the polling period when server-sent events fail. */
const pollEvery = 2000;

export const live: View = (main, { id }) => {
  document.title = `kappa — live song ${id}`;
  const title = h("h1", {}, `Song ${id}: live`);
  const mode = h("p", { class: "mode", "data-mode": "connecting", role: "status" }, "Connecting…");
  const counters = h("div", { class: "kpis big", "aria-live": "polite" });
  const body = h("div", {});
  main.append(title, h("nav", { "aria-label": "Song pages" }, h("a", { href: `/songs/${id}` }, "Song dashboard"), " · ", h("a", { href: "/" }, "Search")),
    mode, section("This minute", "now", counters), body);

  // The windows shown, by start; merge adds an answer's.
  const windows = new Map<string, LiveWindow>();
  let watermark: string | null = null;
  const merge = (a: Live) => {
    // NB: a window's counts only grow, so an answer that arrives late
    // (the first read of the hour after a pushed update) keeps the
    // newer counts.
    for (const w of a.windows) {
      const had = windows.get(w.start);
      if (!had || w.plays > had.plays || (w.plays === had.plays && w.listeners >= had.listeners)) windows.set(w.start, w);
    }
    const starts = [...windows.keys()].sort().reverse();
    for (const s of starts.slice(shown)) windows.delete(s);
    if (a.watermark && (!watermark || a.watermark > watermark)) watermark = a.watermark;
    show({ ...a, watermark, windows: [...windows.values()].sort((x, y) => (x.start < y.start ? 1 : -1)) });
  };
  const show = (a: Live) => {
    if (a.title) title.textContent = `${a.title}${a.artist_name ? " — " + a.artist_name : ""}: live`;
    const [cur, prev] = a.windows;
    const card = (key: string, label: string, v: number | undefined, sub: string) =>
      h("div", { class: "kpi", "data-kpi": key, "data-value": v ?? 0 },
        h("div", { class: "kpi-label" }, label), h("div", { class: "kpi-value" }, num(v ?? 0)), h("div", { class: "kpi-sub" }, sub));
    counters.replaceChildren(
      card("plays", "Plays this minute", cur?.plays, prev ? `${num(prev.plays)} the minute before` : "–"),
      card("listeners", "Listeners this minute", cur?.listeners, prev ? `${num(prev.listeners)} the minute before` : "–"),
      h("div", { class: "kpi", "data-kpi": "watermark" }, h("div", { class: "kpi-label" }, "Event time reached"),
        h("div", { class: "kpi-value" }, a.watermark ? time(a.watermark) : "–"), h("div", { class: "kpi-sub" }, "windows of 1 minute, UTC")));
    const asc = [...a.windows].reverse();
    body.replaceChildren(section("Last 60 minutes", "minutes",
      asc.length ? chart("live", "Plays and listeners per minute", asc.map((w) => Date.parse(w.start) / 1000), [
        { label: "Plays", values: asc.map((w) => w.plays), color: "#1f5fa8" },
        { label: "Listeners", values: asc.map((w) => w.listeners), color: "#b34700" },
      ], { height: 220 }) : notice("No listens of this song in the last 60 minutes."),
      table<LiveWindow>({
        name: "windows", caption: "Plays and listeners per minute (newest first, UTC)", rows: a.windows,
        columns: [
          { key: "start", label: "Minute", value: (r) => r.start, cell: (r) => h("time", { datetime: r.start }, time(r.start)) },
          { key: "plays", label: "Plays", value: (r) => r.plays, numeric: true },
          { key: "listeners", label: "Listeners", value: (r) => r.listeners, numeric: true },
        ],
      })));
  };
  const setMode = (m: string, text: string) => {
    mode.dataset.mode = m;
    mode.textContent = text;
  };

  let es: EventSource | null = null;
  let poll = 0;
  let stopped = false;
  const startPolling = () => {
    if (poll || stopped) return;
    setMode("polling", "Polling every 2 s (the live stream is unavailable).");
    const tick = async () => {
      try {
        merge(await get<Live>(`/v1/songs/${id}/live`, { window: "1m", last: pushed }));
      } catch (e) {
        setMode("polling", "Polling: " + (e as Error).message);
      }
    };
    tick();
    poll = window.setInterval(tick, pollEvery);
  };
  get<Live>(`/v1/songs/${id}/live`, { window: "1m", last: shown }).then((a) => {
    if (!stopped) merge(a);
  }, (e) => setMode(mode.dataset.mode ?? "connecting", "Could not read the last hour: " + (e as Error).message));
  if (typeof EventSource === "function" && !new URLSearchParams(location.search).has("poll")) {
    es = new EventSource(`/v1/songs/${id}/live/events?window=1m&last=${pushed}`);
    let failures = 0;
    es.addEventListener("windows", (e) => {
      failures = 0;
      setMode("live", "Live: updates are pushed as they happen.");
      merge(JSON.parse((e as MessageEvent).data) as Live);
    });
    es.addEventListener("error", (e) => {
      const data = (e as MessageEvent).data;
      if (data) {
        setMode("live", "Live, but the windows cannot be read now: " + (JSON.parse(data).error ?? ""));
        return;
      }
      // A connection error: EventSource retries; after a few, poll.
      if (++failures >= 3 || es!.readyState === EventSource.CLOSED) {
        es!.close();
        es = null;
        startPolling();
      }
    });
  } else {
    startPolling();
  }
  return () => {
    stopped = true;
    es?.close();
    clearInterval(poll);
  };
};
