// The golden fixtures of a release, read by the TypeScript package: every case
// decodes from binary to the values the Python standard target reads, writes back
// the same bytes, and decodes from ProtoJSON to the same message.
//
// The Python side (tests/sdk/typescript/) writes the cases of one release, with the
// standard target's reading as ProtoJSON, to the file named by CHAT_FIXTURE_CASES.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  equals,
  fromBinary,
  fromJson,
  toBinary,
  toJson,
  type DescMessage,
  type JsonValue,
  type MessageShape,
} from "@bufbuild/protobuf";
import { schemaRegistry } from "../src/index.js";

interface FixtureCase {
  /** `<release>/<message>/<case>`, for the report. */
  id: string;
  /** Full name of the message type. */
  message: string;
  /** Canonical binary as the release wrote it, base64. */
  binary: string;
  /** Canonical ProtoJSON as the release wrote it. */
  json: JsonValue;
  /** ProtoJSON of the Python standard target's reading of `binary`. */
  python: JsonValue;
}

/**
 * Whether two ProtoJSON values are the same. Known difference, recorded in the README: a
 * `float` field prints as the float32's exact double value here (-1.401298464324817e-45)
 * and as the shortest decimal that rounds to the same float32 in Python (-1.4013e-45);
 * both parse to the same float32, which the byte comparison below proves exactly.
 */
function sameJson(actual: JsonValue, expected: JsonValue): boolean {
  if (typeof actual === "number" && typeof expected === "number") {
    return actual === expected || Math.fround(actual) === Math.fround(expected);
  }
  if (Array.isArray(actual) && Array.isArray(expected)) {
    return actual.length === expected.length && actual.every((item, i) => sameJson(item, expected[i] ?? null));
  }
  if (actual !== null && expected !== null && typeof actual === "object" && typeof expected === "object") {
    if (Array.isArray(actual) || Array.isArray(expected)) return false;
    const keys = Object.keys(actual);
    return (
      keys.length === Object.keys(expected).length &&
      keys.every((key) => key in expected && sameJson(actual[key] ?? null, expected[key] ?? null))
    );
  }
  return actual === expected;
}

/**
 * A message read from ProtoJSON, passed once through binary so float fields hold float32
 * values as they do after fromBinary. Compared with `equals`, not as bytes: map entries
 * keep the order of the JSON object, which need not be the fixture's sorted order.
 */
function settled(schema: DescMessage, json: JsonValue): MessageShape<DescMessage> {
  return fromBinary(schema, toBinary(schema, fromJson(schema, json, { registry: schemaRegistry })));
}

const path = process.env["CHAT_FIXTURE_CASES"];
if (path === undefined) {
  throw new Error("CHAT_FIXTURE_CASES names the fixture cases file written by the Python test");
}
const cases = JSON.parse(readFileSync(path, "utf8")) as FixtureCase[];

test("the cases file is not empty", () => {
  assert.ok(cases.length > 0);
});

for (const fixture of cases) {
  test(fixture.id, () => {
    const schema = schemaRegistry.getMessage(fixture.message);
    assert.ok(schema, `${fixture.message} is not in the TypeScript package`);
    const bytes = Buffer.from(fixture.binary, "base64");

    const fromWire = fromBinary(schema, bytes);
    const json = toJson(schema, fromWire);
    assert.ok(sameJson(json, fixture.python), `binary decodes to the Python values:\n${JSON.stringify(json)}`);
    assert.ok(equals(schema, settled(schema, fixture.python), fromWire), "the same values as Python, exactly");
    assert.deepEqual(Buffer.from(toBinary(schema, fromWire)), bytes, "re-encodes to the same bytes");
    assert.ok(equals(schema, settled(schema, fixture.json), fromWire), "ProtoJSON decodes to the same message");
  });
}
