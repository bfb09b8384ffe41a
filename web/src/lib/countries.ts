// ISO 3166-1 codes: alpha-2 (the API's) and numeric (the world atlas's).
import codes from "i18n-iso-countries/codes.json";

/** alpha2 lists every alpha-2 code. */
export const alpha2: string[] = (codes as string[][]).map((c) => c[0]).sort();

/** byNumeric maps a numeric code ("826") to its alpha-2 code ("GB"). */
export const byNumeric: Map<string, string> = new Map((codes as string[][]).map((c) => [c[2], c[0]]));
