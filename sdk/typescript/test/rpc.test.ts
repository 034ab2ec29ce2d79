// The TypeScript client calls every RPC kind of the Python services (grpclib) over a
// real HTTP/2 socket: unary, server streaming, client streaming and bidirectional.
//
// The Python side (tests/sdk/test_typescript_client.py) starts the services on
// 127.0.0.1, port 0, and passes the port in CHAT_PORT.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, test } from "node:test";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  connect,
  PresenceState,
  type ChatStreamRequestSchema,
  type NewMessageSchema,
} from "../src/index.js";

const port = Number(process.env["CHAT_PORT"]);
if (!Number.isInteger(port) || port <= 0) {
  throw new Error("CHAT_PORT names the port of the Python services");
}
const chat = connect({ port, timeoutMs: 20_000 });

function newMessage(conversationId: string, key: string, content: string): MessageInitShape<typeof NewMessageSchema> {
  return { idempotencyKey: key, conversationId, authorId: "u-1", content };
}

async function* each<T>(items: T[]): AsyncIterable<T> {
  yield* items;
}

test("client streaming, unary and server streaming calls of MessageService", async () => {
  const conversation = `ts-${randomUUID().slice(0, 8)}`;
  const batch = ["m0", "m1", "m2"].map((text, i) => ({ message: newMessage(conversation, `${conversation}-${i}`, text) }));
  const sent = await chat.messages.sendMessages(each(batch));
  assert.deepEqual(sent.messages.map((m) => m.content), ["m0", "m1", "m2"]);
  assert.equal(sent.createdCount, 3);
  assert.equal(typeof sent.messages[0]?.sequence, "bigint", "int64 fields are bigint");

  const got = await chat.messages.getMessage({ messageId: sent.messages[1]?.id ?? "", includeUser: true });
  assert.equal(got.message?.content, "m1");
  assert.ok(got.message?.createdAt, "the server stamps created_at");

  const replay: string[] = [];
  for await (const item of chat.messages.streamMessages({ conversationId: conversation })) {
    replay.push(item.message?.content ?? "");
  }
  assert.deepEqual(replay, ["m0", "m1", "m2"]);

  const tail = chat.messages.streamMessages({ conversationId: conversation, afterSequence: sent.messages[1]?.sequence ?? 0n });
  const rest: string[] = [];
  for await (const item of tail) rest.push(item.message?.content ?? "");
  assert.deepEqual(rest, ["m2"], "a bigint position is sent and honoured");
});

test("a long message comes back whole: the server compresses it for this client (gzip)", async () => {
  const conversation = `ts-zip-${randomUUID().slice(0, 8)}`;
  const text = Array.from({ length: 60 }, (_, i) => `line ${i}: the release moves to Friday.`).join(" ");
  const sent = await chat.messages.sendMessages(each([{ message: newMessage(conversation, `${conversation}-0`, text) }]));
  const got = await chat.messages.getMessage({ messageId: sent.messages[0]?.id ?? "" });
  assert.equal(got.message?.content, text);
});

test("a bidirectional ChatStream: join, send, and receive the message live", { timeout: 20_000 }, async () => {
  const conversation = `ts-live-${randomUUID().slice(0, 8)}`;
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  async function* requests(): AsyncIterable<MessageInitShape<typeof ChatStreamRequestSchema>> {
    yield { event: { case: "join", value: { conversationId: conversation, userId: "u-1" } } };
    yield { event: { case: "send", value: newMessage(conversation, `${conversation}-live`, "live") } };
    await finished; // half-close only after the message came back
  }
  const seen: string[] = [];
  // Leaving the loop does not end the call (the server keeps a joined stream open): the
  // signal cancels it. No deadline (timeoutMs 0; the test's own timeout bounds it): connect
  // clears a deadline's timer only when the call ends by itself, and the timer would hold
  // node's event loop for the whole deadline after the test.
  const call = new AbortController();
  for await (const event of chat.messages.chatStream(requests(), { signal: call.signal, timeoutMs: 0 })) {
    if (event.event.case === "presence") {
      assert.equal(event.event.value.state, PresenceState.JOINED);
    }
    if (event.event.case === "message") {
      seen.push(event.event.value.content);
      finish();
      break;
    }
  }
  call.abort();
  assert.deepEqual(seen, ["live"]);
});

test("EditMessage returns the edited message, stamped", async () => {
  const key = `ts-edit-${randomUUID().slice(0, 8)}`;
  const sent = await chat.messages.sendMessages(each([{ message: newMessage(key, key, "draft") }]));
  const edited = await chat.messages.editMessage({ messageId: sent.messages[0]?.id ?? "", editorId: "u-1", content: "final" });
  assert.equal(edited.message?.content, "final");
  assert.ok(edited.message?.editedAt);
});

test("a call of each kind on the RAG, AI and plugin services", async () => {
  const doc = `doc-${randomUUID().slice(0, 8)}`;
  const ingested = await chat.rag.ingestDocument(
    each([{ header: { documentId: doc, title: "Backoff" }, text: "Retries back off. " }, { text: "Deadlines bound every call." }]),
  );
  assert.equal(ingested.document?.documentId, doc);
  const found = await chat.rag.searchDocuments({ query: { case: "text", value: "retries back off" }, documentIds: [doc] });
  assert.equal(found.passages[0]?.documentId, doc);

  const events = [];
  for await (const event of chat.ai.streamCompletion({ conversationId: "c", prompt: "hello" })) events.push(event);
  assert.equal(events.at(-1)?.event.case, "done");

  const listed = await chat.plugins.listPlugins({});
  assert.ok(listed.plugins.some((p) => p.name === "word_count"));
  const counted = await chat.plugins.invokePlugin({ pluginName: "word_count", arguments: { text: "a b c" } });
  assert.match(counted.output, /3/);
  await chat.rag.deleteDocument({ documentId: doc });
});

test("a gRPC status arrives as a ConnectError with its code", async () => {
  await assert.rejects(chat.messages.getMessage({ messageId: "no-such-message" }), (error: unknown) => {
    assert.ok(error instanceof ConnectError);
    assert.equal(error.code, Code.NotFound);
    return true;
  });
  await assert.rejects(chat.messages.getMessage({ messageId: "" }), (error: unknown) => {
    assert.ok(error instanceof ConnectError);
    assert.equal(error.code, Code.InvalidArgument);
    return true;
  });
});

after(() => chat.close());
