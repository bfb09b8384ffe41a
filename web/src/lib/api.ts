// The API client: JSON GETs against the same origin.

/** APIError is a non-2xx answer, with the server's {"error"} text. */
export class APIError extends Error {
  constructor(public status: number, message: string) {
    super(message);
  }
}

export type Params = Record<string, string | number | undefined | null>;

/** url is path with the defined params as its query string. */
export function url(path: string, params: Params = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? path + "?" + s : path;
}

/** get fetches path?params and decodes the JSON answer; non-2xx throws APIError. */
export async function get<T>(path: string, params: Params = {}): Promise<T> {
  const resp = await fetch(url(path, params), { headers: { Accept: "application/json" }, credentials: "same-origin" });
  let body: unknown = null;
  try {
    body = await resp.json();
  } catch {
    body = null;
  }
  if (resp.status === 401) {
    throw new APIError(401, "this server needs an API key with the reader role: sign in at /login");
  }
  if (!resp.ok) {
    const msg = body && typeof body === "object" && "error" in body ? String((body as { error: unknown }).error) : resp.statusText;
    throw new APIError(resp.status, msg);
  }
  return body as T;
}

/** orNull is get, answering null when the endpoint is absent (404) or off. */
export async function orNull<T>(path: string, params: Params = {}): Promise<T | null> {
  try {
    return await get<T>(path, params);
  } catch (e) {
    if (e instanceof APIError && e.status === 404) return null;
    throw e;
  }
}

// Answers of the endpoints the dashboards read (CONTRACT.md).

export interface DayRow { day: string; plays: number; streams: number }
export interface CountryRow { country: string | null; plays: number; streams: number }
export interface Plays<R> {
  song_id?: number; artist_id?: number; title?: string; artist_name?: string;
  from: string; to: string; country?: string; plays: number; streams: number; rows: R[];
}
export interface LiveWindow { start: string; end: string; plays: number; listeners: number }
export interface Live { song_id: number; title?: string; artist_name?: string; window: string; watermark: string | null; windows: LiveWindow[] }
export interface Zone { cell: string; fans: number }
export interface FanZones { artist_id: number; res: number; min_fans: number; zones: Zone[]; next?: string }
export interface TopRow { artist_id?: number; song_id?: number; plays: number; streams: number; title?: string; artist_name?: string }
export interface Top { from: string; to: string; country?: string; by: string; top: TopRow[] }
export interface Similar { song_id: number; similar: { song_id: number; score: number }[] }
export interface SearchAnswer {
  q: string;
  artists: { artist_id: number; name: string }[];
  songs: { song_id: number; title: string; artist_id: number; artist_name?: string }[];
}
