// Every option of `connect` and `createChatTransport`, each with an effect the services
// can see: interceptors (the server refuses a call without the token one of them sets),
// timeouts (the deadline a call carries, and DEADLINE_EXCEEDED against a slow stream),
// host forms (IPv4, bare and bracketed IPv6; a scheme, TLS or a port in the host refused
// with a clear TypeError), and the shared transport and close().
//
// The Python side (tests/sdk/test_typescript_options.py) starts, on port 0:
// CHAT_PORT      the services on 127.0.0.1, enforcing service-account tokens, streaming
//                each completion chunk after a pause (CHAT_CHUNK_DELAY_MS);
// CHAT_IPV6_PORT a MessageService on ::1 whose GetMessage answers "ok";
// CHAT_TOKEN     a token those services accept; CHAT_CLOSED_PORT a port nothing listens on.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { Http2SessionManager } from "@connectrpc/connect-node";
import { connect, createChatTransport, MessageService, type ConnectOptions } from "../src/index.js";

function numberFrom(name: string): number {
  const value = Number(process.env[name]);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be set by the Python test`);
  return value;
}

const port = numberFrom("CHAT_PORT");
const ipv6Port = numberFrom("CHAT_IPV6_PORT");
const closedPort = numberFrom("CHAT_CLOSED_PORT");
const chunkDelayMs = numberFrom("CHAT_CHUNK_DELAY_MS");
const token = process.env["CHAT_TOKEN"] ?? "";
const SHORT_MS = Math.floor(chunkDelayMs / 5); // ends long before the first chunk of a completion
const LONG_MS = 60_000; // a bound on a hung call, never a speed target

function bearer(value: string, log?: string[]): Interceptor {
  return (next) => async (req) => {
    req.header.set("authorization", `Bearer ${value}`);
    log?.push(req.method.name);
    return await next(req);
  };
}

function code(expected: Code): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof ConnectError, `a ConnectError, not ${String(error)}`);
    assert.equal(Code[error.code], Code[expected], error.message);
    return true;
  };
}

/** The `grpc-timeout` header each call sends, as the last interceptor sees it. */
function deadlines(): { seen: (string | null)[]; interceptor: Interceptor } {
  const seen: (string | null)[] = [];
  return {
    seen,
    interceptor: (next) => async (req) => {
      seen.push(req.header.get("grpc-timeout"));
      return await next(req);
    },
  };
}

/** The events of a one-chunk completion, read to its end (each chunk comes after the server's pause). */
async function completion(options: ConnectOptions, callOptions: { timeoutMs?: number } = {}): Promise<string[]> {
  const chat = connect(options);
  try {
    const events: string[] = [];
    for await (const event of chat.ai.streamCompletion({ prompt: "hello there", maxTokens: 1 }, callOptions)) {
      events.push(event.event.case ?? "");
    }
    return events;
  } finally {
    chat.close();
  }
}

test("without interceptors the secured services refuse the call: the client reached them", async () => {
  const chat = connect({ port, timeoutMs: LONG_MS });
  try {
    await assert.rejects(chat.plugins.listPlugins({}), code(Code.Unauthenticated));
  } finally {
    chat.close();
  }
});

test("an interceptor's header reaches the server on unary and streaming calls", async () => {
  const log: string[] = [];
  const chat = connect({ port, timeoutMs: LONG_MS, interceptors: [bearer(token, log)] });
  try {
    const listed = await chat.plugins.listPlugins({});
    assert.ok(listed.plugins.length > 0);
    const replay = [];
    for await (const item of chat.messages.streamMessages({ conversationId: "options-empty" })) replay.push(item);
    assert.deepEqual(replay, []);
    assert.deepEqual(log, ["ListPlugins", "StreamMessages"]);
  } finally {
    chat.close();
  }
});

test("interceptors run in the order given, the first outermost: the last one's header is sent", async () => {
  const order: string[] = [];
  const tracing = (name: string): Interceptor => (next) => async (req) => {
    order.push(`${name}>`);
    const res = await next(req);
    order.push(`<${name}`);
    return res;
  };
  const good = connect({ port, timeoutMs: LONG_MS, interceptors: [tracing("a"), bearer("wrong"), bearer(token), tracing("b")] });
  const bad = connect({ port, timeoutMs: LONG_MS, interceptors: [bearer(token), bearer("chs_wrong-token")] });
  try {
    await good.plugins.listPlugins({});
    assert.deepEqual(order, ["a>", "b>", "<b", "<a"]);
    await assert.rejects(bad.plugins.listPlugins({}), code(Code.Unauthenticated));
  } finally {
    good.close();
    bad.close();
  }
});

test("timeoutMs: 5000 by default, the client's value, or the call's own; each is the deadline sent", async () => {
  const { seen, interceptor } = deadlines();
  const chats = [
    connect({ port, interceptors: [bearer(token), interceptor] }),
    connect({ port, timeoutMs: 1234, interceptors: [bearer(token), interceptor] }),
  ];
  try {
    for (const chat of chats) await chat.plugins.listPlugins({});
    await chats[1]?.plugins.listPlugins({}, { timeoutMs: 250 });
    assert.deepEqual(seen, ["5000m", "1234m", "250m"]);
  } finally {
    for (const chat of chats) chat.close();
  }
});

test("a call slower than the client's timeoutMs fails with DEADLINE_EXCEEDED", async () => {
  const options = { port, timeoutMs: SHORT_MS, interceptors: [bearer(token)] };
  await assert.rejects(completion(options), code(Code.DeadlineExceeded));
});

test("a call's own timeoutMs overrides the client's, shorter or longer", async () => {
  const patient = { port, timeoutMs: LONG_MS, interceptors: [bearer(token)] };
  await assert.rejects(completion(patient, { timeoutMs: SHORT_MS }), code(Code.DeadlineExceeded));
  const hasty = { port, timeoutMs: SHORT_MS, interceptors: [bearer(token)] };
  assert.deepEqual(await completion(hasty, { timeoutMs: LONG_MS }), ["chunk", "done"]);
});

test("host forms: the default and 127.0.0.1 reach IPv4, ::1 and [::1] reach IPv6", async () => {
  for (const host of [undefined, "127.0.0.1"]) {
    const chat = connect({ ...(host === undefined ? {} : { host }), port, timeoutMs: LONG_MS });
    try {
      await assert.rejects(chat.plugins.listPlugins({}), code(Code.Unauthenticated), `host ${String(host)}`);
    } finally {
      chat.close();
    }
  }
  for (const host of ["::1", "[::1]", "0:0:0:0:0:0:0:1"]) {
    const chat = connect({ host, port: ipv6Port, timeoutMs: LONG_MS });
    try {
      const reply = await chat.messages.getMessage({ messageId: "m-6" });
      assert.equal(reply.message?.content, "ok", `host ${host}`);
    } finally {
      chat.close();
    }
  }
});

test("a host with a scheme, a port or TLS, and a port out of range, are refused with a clear TypeError", () => {
  const refused: [ConnectOptions, RegExp][] = [
    [{ host: "http://127.0.0.1", port }, /has a scheme: give the host name or address alone/],
    [{ host: "HTTP://127.0.0.1", port }, /has a scheme/],
    [{ host: "https://chat.example", port }, /asks for TLS: this client speaks plaintext HTTP\/2 only/],
    [{ host: `127.0.0.1:${port}`, port }, /is not a host name or address \(a port goes in port/],
    [{ host: `[::1]:${port}`, port }, /is not a host name or address/],
    [{ host: "127.0.0.1/chat", port }, /is not a host name or address/],
    [{ host: "", port }, /"" is not a host name or address/],
    [{ host: "[127.0.0.1]", port }, /is not a host name or address/],
    [{ port: 0 }, /port must be an integer from 1 to 65535, not 0/],
    [{ port: 65536 }, /not 65536/],
    [{ port: 50051.5 }, /not 50051.5/],
    [{ port: Number.NaN }, /not NaN/],
  ];
  for (const [options, message] of refused) {
    assert.throws(() => connect(options), (error: unknown) => error instanceof TypeError && message.test(error.message));
    assert.throws(() => createChatTransport(options), TypeError);
  }
  const long = "x".repeat(5000) + ":1";
  assert.throws(
    () => connect({ host: long, port }),
    (error: unknown) => error instanceof Error && error.message.length < 300,
    "a refused host is cut short in the message",
  );
});

test("a port nothing listens on fails the call with UNAVAILABLE", async () => {
  const chat = connect({ port: closedPort, timeoutMs: LONG_MS });
  try {
    await assert.rejects(chat.plugins.listPlugins({}), code(Code.Unavailable));
  } finally {
    chat.close();
  }
});

test("the shared transport carries the options to clients made from it; createChatTransport alone too", async () => {
  const { seen, interceptor } = deadlines();
  const chat = connect({ port, timeoutMs: 4321, interceptors: [bearer(token), interceptor] });
  const session = new Http2SessionManager(`http://127.0.0.1:${port}`);
  const alone = createChatTransport({ port, timeoutMs: 999, interceptors: [bearer(token), interceptor] }, session);
  try {
    for (const transport of [chat.transport, alone]) {
      const messages = createClient(MessageService, transport);
      await assert.rejects(messages.getMessage({ messageId: "no-such-message" }), code(Code.NotFound));
    }
    assert.deepEqual(seen, ["4321m", "999m"]);
  } finally {
    chat.close();
    session.abort();
  }
});

test("close() ends a call still running", async () => {
  const chat = connect({ port, timeoutMs: LONG_MS, interceptors: [bearer(token)] });
  const running = (async () => {
    for await (const event of chat.ai.streamCompletion({ prompt: "hello there" })) void event;
  })();
  setImmediate(() => chat.close());
  await assert.rejects(running, (error: unknown) => error instanceof ConnectError);
});
