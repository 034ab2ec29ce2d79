// The chat room page: the gateway's REST routes and Server-Sent Events only, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
let live = null; // the EventSource following the conversation
let lastSequence = "0"; // int64 arrives as a string in ProtoJSON

function conversation() { return $("conversation").value.trim(); }
function user() { return $("user").value.trim(); }

function show(message) {
  if (BigInt(message.sequence || "0") <= BigInt(lastSequence)) return; // already shown
  lastSequence = message.sequence;
  const item = document.createElement("li");
  item.dataset.sequence = message.sequence;
  const author = document.createElement("span");
  author.className = "author";
  author.textContent = message.authorId;
  const text = document.createElement("span");
  text.className = "content";
  text.textContent = message.content;
  item.append(author, text);
  $("messages").append(item);
}

function join() {
  if (live) live.close();
  $("messages").replaceChildren();
  lastSequence = "0";
  const id = encodeURIComponent(conversation());
  live = new EventSource(`/v1/conversations/${id}/messages:stream?follow=true`);
  live.addEventListener("open", () => { $("status").textContent = "live"; });
  live.addEventListener("message", (event) => show(JSON.parse(event.data).message));
  live.addEventListener("error", (event) => {
    // A gateway `error` event carries a google.rpc.Status; a transport error has no data.
    $("status").textContent = event.data ? JSON.parse(event.data).message : "reconnecting";
  });
}

async function send(content) {
  const body = [{ message: {
    idempotencyKey: crypto.randomUUID(), conversationId: conversation(), authorId: user(), content,
  } }];
  const reply = await fetch("/v1/messages:send", {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  });
  if (!reply.ok) $("status").textContent = (await reply.json()).message;
}

// Reads a text/event-stream response body, calling onEvent(type, data) for each event.
async function readEvents(response, onEvent) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let type = "message";
      const data = [];
      for (const line of frame.split("\n")) {
        if (line.startsWith("event:")) type = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      if (data.length) onEvent(type, data.join("\n"));
    }
  }
}

async function ask(prompt) {
  $("answer").textContent = "";
  $("answer").dataset.chunks = "0";
  $("answer-status").textContent = "thinking…";
  const response = await fetch("/v1/completions:stream", {
    method: "POST",
    headers: { "content-type": "application/json", accept: "text/event-stream" },
    body: JSON.stringify({ conversationId: conversation(), prompt }),
  });
  if (!response.ok) {
    $("answer-status").textContent = (await response.json()).message;
    return;
  }
  await readEvents(response, (type, data) => {
    const event = JSON.parse(data);
    if (type === "message" && event.chunk) {
      $("answer").textContent += event.chunk.text || "";
      $("answer").dataset.chunks = String(Number($("answer").dataset.chunks) + 1);
    }
    if (type === "message" && event.done) $("answer-status").textContent = `done: ${event.done.finishReason}`;
    if (type === "error") $("answer-status").textContent = event.message;
  });
}

$("join").addEventListener("click", join);
$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const content = $("content").value;
  if (content.trim()) send(content).then(() => { $("content").value = ""; });
});
$("ask").addEventListener("click", () => {
  const prompt = $("content").value;
  if (prompt.trim()) ask(prompt);
});
join();
