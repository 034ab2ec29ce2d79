// The package's version is package.json's, which `nox -s generate` keeps equal to
// the Python SDK's (SemVer spelling: 1.2.0.dev0 there is 1.2.0-dev.0 here).
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const manifest = require("../../package.json") as { version: string };

/** The release of the schema this package was generated from. */
export const version: string = manifest.version;
