// Every file of the chat.v1 schema, for looking message types up by name
// (ProtoJSON of google.protobuf.Any, generic tools, the fixture tests).
import { createRegistry, type Registry } from "@bufbuild/protobuf";
import type { GenFile } from "@bufbuild/protobuf/codegenv2";
import { file_chat_v1_ai_service } from "./gen/chat/v1/ai_service_pb.js";
import { file_chat_v1_common } from "./gen/chat/v1/common_pb.js";
import { file_chat_v1_conversation_service } from "./gen/chat/v1/conversation_service_pb.js";
import { file_chat_v1_message_service } from "./gen/chat/v1/message_service_pb.js";
import { file_chat_v1_plugin_service } from "./gen/chat/v1/plugin_service_pb.js";
import { file_chat_v1_rag_service } from "./gen/chat/v1/rag_service_pb.js";

/** The generated descriptors of every chat.v1 file, in dependency order. */
export const schemaFiles: readonly GenFile[] = [
  file_chat_v1_common,
  file_chat_v1_message_service,
  file_chat_v1_conversation_service,
  file_chat_v1_ai_service,
  file_chat_v1_rag_service,
  file_chat_v1_plugin_service,
];

/** A registry of every message, enum and service of chat.v1 (and the well-known types they use). */
export const schemaRegistry: Registry = createRegistry(...schemaFiles);
