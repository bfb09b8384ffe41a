// Formatting through Intl; every time is UTC.

const nf = new Intl.NumberFormat("en-US");
const pf = new Intl.NumberFormat("en-US", { style: "percent", maximumFractionDigits: 1 });
const sf = new Intl.NumberFormat("en-US", { style: "percent", maximumFractionDigits: 1, signDisplay: "exceptZero" });
const tf = new Intl.DateTimeFormat("en-GB", { timeZone: "UTC", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
const df = new Intl.DateTimeFormat("en-GB", { timeZone: "UTC", day: "numeric", month: "short", year: "numeric" });
const regions = new Intl.DisplayNames(["en"], { type: "region" });

export const num = (n: number): string => nf.format(n);
export const pct = (n: number): string => pf.format(n);
export const signedPct = (n: number): string => sf.format(n);
/** time is hh:mm:ss UTC of a Date or an ISO time. */
export const time = (t: Date | string): string => tf.format(typeof t === "string" ? new Date(t) : t) + " UTC";
/** day formats a YYYY-MM-DD day. */
export const day = (d: string): string => df.format(new Date(d + "T00:00:00Z"));

/** country is the English name of an ISO 3166-1 alpha-2 code ("Unknown" for null). */
export function country(code: string | null): string {
  if (!code) return "Unknown";
  try {
    return regions.of(code) ?? code;
  } catch {
    return code;
  }
}

/** today is the current UTC day, YYYY-MM-DD. */
export const today = (): string => new Date().toISOString().slice(0, 10);

/** addDays shifts a YYYY-MM-DD day by n days. */
export function addDays(d: string, n: number): string {
  const t = new Date(d + "T00:00:00Z");
  t.setUTCDate(t.getUTCDate() + n);
  return t.toISOString().slice(0, 10);
}

/** daysBetween is the number of days from a to b (b - a). */
export const daysBetween = (a: string, b: string): number =>
  Math.round((Date.parse(b + "T00:00:00Z") - Date.parse(a + "T00:00:00Z")) / 86400000);

/** daysOf lists the days from..to inclusive. */
export function daysOf(from: string, to: string): string[] {
  const out: string[] = [];
  for (let d = from; d <= to && out.length < 3700; d = addDays(d, 1)) out.push(d);
  return out;
}
