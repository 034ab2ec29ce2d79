// The package's surface: every generated file is exported and registered, the version
// is package.json's, and 64-bit integers are bigint across their whole range.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { create, fromBinary, fromJson, toBinary, toJson } from "@bufbuild/protobuf";
import * as sdk from "../src/index.js";

const root = new URL("../../", import.meta.url);
const generated = new URL("src/gen/chat/v1/", root);

test("every generated file is re-exported and in the schema registry", async () => {
  const files = readdirSync(generated).filter((name) => name.endsWith("_pb.ts"));
  assert.ok(files.length > 0);
  for (const name of files) {
    const module = (await import(new URL(`../src/gen/chat/v1/${name.replace(/\.ts$/, ".js")}`, import.meta.url).href)) as Record<string, unknown>;
    for (const exported of Object.keys(module)) {
      assert.ok(exported in sdk, `${exported} of ${name} is not exported by the package`);
    }
    const fileExport = Object.keys(module).find((key) => key.startsWith("file_"));
    assert.ok(fileExport && sdk.schemaFiles.includes(module[fileExport] as (typeof sdk.schemaFiles)[number]), `${name} is not in schemaFiles`);
  }
});

test("the version is package.json's, which generation keeps equal to the Python SDK's", () => {
  const manifest = JSON.parse(readFileSync(new URL("package.json", root), "utf8")) as { version: string };
  assert.equal(sdk.version, manifest.version);
  assert.match(sdk.version, /^\d+\.\d+\.\d+(-dev\.\d+)?$/);
});

test("int64 fields are bigint across the whole range, strings in ProtoJSON", () => {
  const extremes = [-(2n ** 63n), -1n, 0n, 2n ** 53n + 1n, 2n ** 63n - 1n];
  for (const sequence of extremes) {
    const message = create(sdk.MessageSchema, { sequence });
    const back = fromBinary(sdk.MessageSchema, toBinary(sdk.MessageSchema, message));
    assert.equal(back.sequence, sequence);
    const json = toJson(sdk.MessageSchema, message) as { sequence?: string };
    assert.equal(json.sequence, sequence === 0n ? undefined : sequence.toString());
    assert.equal(fromJson(sdk.MessageSchema, { sequence: sequence.toString() }).sequence, sequence);
  }
});
