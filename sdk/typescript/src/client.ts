// A gRPC client for the chat.v1 services over HTTP/2 (connect-node's gRPC
// transport), the same protocol the Python services (grpclib) speak.
import { isIPv6 } from "node:net";
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { AIService } from "./gen/chat/v1/ai_service_pb.js";
import { ConversationService } from "./gen/chat/v1/conversation_service_pb.js";
import { MessageService } from "./gen/chat/v1/message_service_pb.js";
import { PluginService } from "./gen/chat/v1/plugin_service_pb.js";
import { RAGService } from "./gen/chat/v1/rag_service_pb.js";

/** Where the services listen, and the defaults every call gets. */
export interface ConnectOptions {
  /**
   * Host name or address; the default is 127.0.0.1. An IPv6 address goes bare or in
   * brackets (`::1`, `[::1]`). No scheme and no port: `connect` refuses `http://…`,
   * `https://…` (this client speaks plaintext HTTP/2 only) and `host:port` with a TypeError.
   */
  host?: string;
  /** TCP port of the gRPC server (plaintext HTTP/2), 1 to 65535. */
  port: number;
  /** Deadline of each call in milliseconds unless the call sets `timeoutMs`; the default is 5000. */
  timeoutMs?: number;
  /** Interceptors run on every call (authentication, logging). */
  interceptors?: Interceptor[];
}

/** One client per chat.v1 service, sharing one HTTP/2 connection. */
export interface ChatClients {
  messages: Client<typeof MessageService>;
  conversations: Client<typeof ConversationService>;
  ai: Client<typeof AIService>;
  rag: Client<typeof RAGService>;
  plugins: Client<typeof PluginService>;
  /** The transport the clients share, for clients of other services on the same connection. */
  transport: Transport;
  /** Close the HTTP/2 connection; calls still running fail. */
  close(): void;
}

const SHOWN_CHARS = 100; // of a refused host in an error message

/** The base URL of the chat services at `options` (plaintext HTTP/2); a TypeError says what is wrong. */
function baseUrl(options: ConnectOptions): string {
  const host = options.host ?? "127.0.0.1";
  const shown = JSON.stringify(host.length > SHOWN_CHARS ? `${host.slice(0, SHOWN_CHARS)}...` : host);
  if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) {
    throw new TypeError(`port must be an integer from 1 to 65535, not ${String(options.port).slice(0, 20)}`);
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(host)?.[1]?.toLowerCase();
  if (scheme === "https") {
    throw new TypeError(`host ${shown} asks for TLS: this client speaks plaintext HTTP/2 only`);
  }
  if (scheme !== undefined) {
    throw new TypeError(`host ${shown} has a scheme: give the host name or address alone, and the port as port`);
  }
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  if (isIPv6(bare)) {
    return `http://[${bare}]:${options.port}`;
  }
  if (bare !== host || host === "" || /[:/\s@[\]?#]/.test(host)) {
    throw new TypeError(`host ${shown} is not a host name or address (a port goes in port, not in host)`);
  }
  return `http://${host}:${options.port}`;
}

/** A gRPC transport (HTTP/2 with prior knowledge, no TLS) to the chat services at `options`. */
export function createChatTransport(
  options: ConnectOptions,
  sessionManager: Http2SessionManager = new Http2SessionManager(baseUrl(options)),
): Transport {
  return createGrpcTransport({
    baseUrl: baseUrl(options),
    defaultTimeoutMs: options.timeoutMs ?? 5000,
    interceptors: options.interceptors ?? [],
    sessionManager,
  });
}

/** Clients of every chat.v1 service over one HTTP/2 connection; `close()` it when done. */
export function connect(options: ConnectOptions): ChatClients {
  const sessionManager = new Http2SessionManager(baseUrl(options));
  const transport = createChatTransport(options, sessionManager);
  return {
    messages: createClient(MessageService, transport),
    conversations: createClient(ConversationService, transport),
    ai: createClient(AIService, transport),
    rag: createClient(RAGService, transport),
    plugins: createClient(PluginService, transport),
    transport,
    close: () => sessionManager.abort(),
  };
}
