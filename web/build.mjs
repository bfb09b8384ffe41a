// Builds the dashboards into dist/ (or the folder given as the first
// argument): dist/index.html and dist/assets/<name>-<hash>.{js,css}.
// The output is a pure function of the sources and the lockfile's
// packages, so the committed dist/ can be checked against a rebuild.
import * as esbuild from "esbuild";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";

const out = process.argv[2] ?? "dist";
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, "assets"), { recursive: true });

const result = await esbuild.build({
  entryPoints: ["src/main.ts"],
  bundle: true,
  splitting: false,
  format: "esm",
  target: ["es2020", "chrome100", "firefox100", "safari15"],
  minify: true,
  legalComments: "eof",
  outdir: join(out, "assets"),
  entryNames: "[name]-[hash]",
  assetNames: "[name]-[hash]",
  metafile: true,
  logLevel: "warning",
});

let js = "", css = "";
for (const file of Object.keys(result.metafile.outputs)) {
  if (file.endsWith(".js")) js = basename(file);
  if (file.endsWith(".css")) css = basename(file);
}
if (!js || !css) throw new Error("build: no js or css output");
const html = readFileSync("src/index.html", "utf8").replace("{{js}}", js).replace("{{css}}", css);
writeFileSync(join(out, "index.html"), html);
console.log(`built ${out}/index.html, assets/${js}, assets/${css}`);
