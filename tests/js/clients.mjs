// The TypeScript clients against a running convostore (driven by tests/test_js_clients.py):
// `openai` (npm) and @openai/agents' OpenAIConversationsSession, at the versions pinned in
// package.json. Usage: node clients.mjs http://127.0.0.1:PORT/v1
// Prints one JSON object: what each step saw. Any failure exits non-zero with the error.
import OpenAI from "openai";
import { OpenAIConversationsSession } from "@openai/agents";

const baseURL = process.argv[2];
const client = new OpenAI({ baseURL, apiKey: "anything", maxRetries: 0 });
const out = {};

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

// -- the plain SDK ------------------------------------------------------------------------
const conv = await client.conversations.create({
  metadata: { topic: "js" },
  items: [{ role: "user", content: "Hello from TypeScript" }],
});
out.created = conv;
const added = await client.conversations.items.create(conv.id, {
  items: [
    { type: "function_call", call_id: "call_js", name: "f", arguments: "{}", async: false },
    { type: "function_call_output", call_id: "call_js", output: "ok" },
    {
      role: "user",
      content: [{ type: "input_text", text: "cached", prompt_cache_breakpoint: { mode: "explicit", ttl: "30m" } }],
    },
    { type: "configuration_update", reasoning: { effort: "low" } },
  ],
});
out.added = added.data;
for (let n = 0; n < 25; n += 1) {
  await client.conversations.items.create(conv.id, { items: [{ role: "assistant", content: `reply ${n}` }] });
}
const listed = [];
for await (const item of client.conversations.items.list(conv.id, { order: "asc", limit: 7 })) {
  listed.push(item);
}
out.listed = listed;
const one = await client.conversations.items.retrieve(added.data[0].id, { conversation_id: conv.id });
check(one.id === added.data[0].id, "retrieve by id");
const afterDelete = await client.conversations.items.delete(added.data[1].id, { conversation_id: conv.id });
check(afterDelete.id === conv.id, "delete answers the conversation");
const updated = await client.conversations.update(conv.id, { metadata: { topic: "ts" } });
out.updated = updated;
try {
  await client.conversations.retrieve("conv_missing");
  check(false, "an unknown conversation is an error");
} catch (error) {
  check(error instanceof OpenAI.NotFoundError, `NotFoundError, got ${error}`);
  out.not_found = error.error;
}

// -- @openai/agents' OpenAIConversationsSession ----------------------------------------------
const session = new OpenAIConversationsSession({ client });
await session.addItems([
  { type: "message", role: "user", content: "first turn" },
  {
    type: "message",
    role: "assistant",
    status: "completed",
    content: [{ type: "output_text", text: "first answer" }],
  },
]);
// A compaction: what the runner appends after compacting, then the turns after it.
await session.addItems([{ type: "compaction", encrypted_content: "gAAAA-compacted-history" }]);
await session.addItems([
  { type: "message", role: "user", content: "after compaction" },
  { type: "message", role: "assistant", status: "completed", content: [{ type: "output_text", text: "fresh" }] },
]);
const history = await session.getItems();
out.session_types = history.map((item) => item.type);
const latest = history.map((item) => item.type).lastIndexOf("compaction");
check(latest >= 0, "the compaction item comes back");
out.compaction = history[latest];
out.since_compaction = history.slice(latest + 1).map((item) =>
  typeof item.content === "string" ? item.content : item.content.map((c) => c.text).join(""),
);
out.last_two = (await session.getItems(2)).map((item) => item.type);
const popped = await session.popItem();
out.popped = popped?.content?.[0]?.text ?? null;
out.after_pop = (await session.getItems()).length;
out.session_id = await session.getSessionId();
await session.clearSession();
try {
  await client.conversations.retrieve(out.session_id);
  check(false, "a cleared session's conversation is gone");
} catch (error) {
  check(error instanceof OpenAI.NotFoundError, `NotFoundError after clear, got ${error}`);
}

process.stdout.write(JSON.stringify(out));
