// The web chat: streams replies from /v1/chat/completions (fetch + ReadableStream over its server-sent events).
// The conversation lives in this tab's memory only: nothing is written to localStorage, cookies or the server.
"use strict";

const ENDPOINT = "/v1/chat/completions";
const KEY_SLOT = "gonggam-api-key"; // sessionStorage: the key (never the conversation) survives a reload of the tab
const SEND_CHARS = 50000; // the recent turns sent with each message (the server takes up to 100,000 characters)

const log = document.getElementById("log");
const form = document.getElementById("composer");
const input = document.getElementById("message");
const sendButton = document.getElementById("send");
const stopButton = document.getElementById("stop");
const newButton = document.getElementById("new-chat");
const statusLine = document.getElementById("status");
const keyBox = document.getElementById("key-box");
const keyInput = document.getElementById("api-key");
const crisisTemplate = document.getElementById("crisis-card");

let history = []; // [{role, content}], sent whole with every message; the server trims what the model cannot read
let controller = null; // the AbortController of the reply being streamed
let apiKey = sessionStorage.getItem(KEY_SLOT) || "";

const MESSAGES = {
  context_length_exceeded: "메시지가 너무 길어요. 조금 줄이거나 나눠서 보내 주세요.",
  invalid_api_key: "API 키가 필요해요. 아래에 입력해 주세요.",
  engine_failure: "모델 서버가 응답하지 않았어요. 잠시 뒤 다시 보내 주세요.",
  server_busy: "지금 대화하는 사람이 많아요. 잠시 뒤 다시 보내 주세요.",
};

class ServerError extends Error {
  constructor(error, status) {
    super(error.message || "error");
    this.code = error.code || "";
    this.status = status;
  }
}

function scrollDown() {
  log.scrollTop = log.scrollHeight;
}

function addBubble(role, text) {
  const bubble = document.createElement("div");
  bubble.className = `msg ${role}`;
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  bubble.append(body);
  log.append(bubble);
  scrollDown();
  return bubble;
}

function addNote(bubble, text) {
  const note = document.createElement("span");
  note.className = "note";
  note.textContent = text;
  bubble.append(note);
}

function showCrisisCard(bubble, text) {
  const card = crisisTemplate.content.firstElementChild.cloneNode(true);
  card.querySelector(".crisis-text").textContent = text;
  bubble.className = "msg assistant crisis";
  bubble.replaceChildren(card);
  scrollDown();
}

function showFooter(bubble, text) {
  const footer = document.createElement("span");
  footer.className = "footer";
  footer.textContent = text.trim();
  bubble.append(footer);
  scrollDown();
}

function setBusy(busy) {
  sendButton.hidden = busy;
  stopButton.hidden = !busy;
}

function describe(error) {
  if (error instanceof ServerError) {
    return MESSAGES[error.code] || `요청을 처리하지 못했어요 (${error.status || "stream"}): ${error.message}`;
  }
  return "서버에 연결할 수 없어요. 서버가 켜져 있는지 확인해 주세요.";
}

// The data fields of server-sent events, one string per event, from a fetch response body.
async function* events(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true }).replaceAll("\r\n", "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = block
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).replace(/^ /, ""))
        .join("\n");
      if (data) yield data;
    }
  }
}

// The newest messages whose text fits SEND_CHARS: the model reads far less (the server trims to its context), and the
// safety layer reads what is sent.
function recent(messages) {
  let start = messages.length - 1;
  let total = messages[start].content.length;
  while (start > 0 && total + messages[start - 1].content.length <= SEND_CHARS) {
    start -= 1;
    total += messages[start].content.length;
  }
  return messages.slice(start);
}

async function request(messages, signal) {
  const headers = { "Content-Type": "application/json" };
  if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
  const response = await fetch(ENDPOINT, {
    method: "POST",
    headers,
    body: JSON.stringify({ messages: recent(messages), stream: true }),
    signal,
  });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    if (response.status === 401) keyBox.hidden = false;
    throw new ServerError(body.error || {}, response.status);
  }
  return response;
}

// One turn: the reply streams into its bubble; a crisis reply (sent as one piece, replacing any text shown before
// it) becomes the crisis card; the concern footer is set apart under the reply.
async function send(text) {
  const userBubble = addBubble("user", text);
  const bubble = addBubble("assistant", "");
  const textNode = bubble.querySelector(".text");
  bubble.dataset.state = "streaming";
  bubble.dataset.chunks = "0";
  const conversation = history; // "새 대화" mid-reply starts a new list; this turn finishes in its own
  conversation.push({ role: "user", content: text });
  controller = new AbortController();
  setBusy(true);
  statusLine.textContent = "";
  let reply = "";
  let footer = "";
  let crisis = false;
  try {
    const response = await request(conversation, controller.signal);
    for await (const data of events(response.body)) {
      if (data === "[DONE]") break;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new ServerError(chunk.error, 0);
      const piece = (chunk.choices && chunk.choices[0] && chunk.choices[0].delta.content) || "";
      const extra = chunk.gonggam || {};
      if (!piece) continue;
      bubble.dataset.chunks = String(Number(bubble.dataset.chunks) + 1);
      if (extra.safety && extra.safety.level === "crisis") {
        crisis = true;
        reply = piece.replace(/^\n+/, "");
        showCrisisCard(bubble, reply);
      } else if (extra.footer) {
        footer = piece;
        showFooter(bubble, piece);
      } else {
        reply += piece;
        textNode.textContent = reply;
        scrollDown();
      }
    }
    bubble.dataset.state = "done";
  } catch (error) {
    if (error.name === "AbortError") {
      bubble.dataset.state = "stopped";
      addNote(bubble, "멈췄어요");
    } else {
      bubble.dataset.state = "error";
      statusLine.textContent = describe(error);
    }
  } finally {
    controller = null;
    setBusy(false);
    const content = crisis ? reply : (reply + footer).trim();
    if (content) {
      conversation.push({ role: "assistant", content });
    } else {
      // Nothing came back: the message leaves the history, so the next one is not refused for the same reason.
      conversation.pop();
      bubble.remove();
      userBubble.classList.add("failed");
      addNote(userBubble, bubble.dataset.state === "stopped" ? "멈췄어요" : "보내지 못했어요");
    }
    input.focus();
  }
}

function submit() {
  const text = input.value.trim();
  if (!text || controller) return;
  input.value = "";
  autosize();
  send(text);
}

// The message box grows with its text up to the CSS max-height, then scrolls.
function autosize() {
  input.style.height = "auto";
  const borders = input.offsetHeight - input.clientHeight;
  input.style.height = `${input.scrollHeight + borders}px`;
  input.style.overflowY = input.scrollHeight + borders > input.offsetHeight ? "auto" : "hidden";
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  submit();
});

input.addEventListener("keydown", (event) => {
  // Enter sends, Shift+Enter is a new line; never while a Korean syllable is still being composed (IME).
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
    event.preventDefault();
    submit();
  }
});
input.addEventListener("input", autosize);

stopButton.addEventListener("click", () => {
  if (controller) controller.abort();
});

newButton.addEventListener("click", () => {
  if (controller) controller.abort();
  history = [];
  log.querySelectorAll(".msg").forEach((bubble) => bubble.remove());
  statusLine.textContent = "";
  input.value = "";
  input.focus();
});

document.getElementById("save-key").addEventListener("click", () => {
  apiKey = keyInput.value.trim();
  sessionStorage.setItem(KEY_SLOT, apiKey);
  keyInput.value = "";
  keyBox.hidden = true;
  statusLine.textContent = "API 키를 저장했어요. 메시지를 다시 보내 주세요.";
});

input.focus();
