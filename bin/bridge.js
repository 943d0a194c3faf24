#!/usr/bin/env node
// The `bridge` command: runs the compiled CLI (npm install builds it into dist/).
import { existsSync } from "node:fs";

const cli = new URL("../dist/ts/cli.js", import.meta.url);
if (!existsSync(cli)) {
  console.error("bridge: the TypeScript is not built yet: run `npm install` (or `npm run build`) in the project folder");
  process.exit(1);
}
await import(cli.href);
