// A round trip through the TypeScript client generated from openapi.json: openapi-typescript makes
// schema.d.ts beside this file, openapi-fetch makes the calls. tsc type-checks it (strict), node runs it:
//   node roundtrip.js <base url> <api key>
// It throws (exit 1) on the first answer that is not what the document promises, else prints a summary.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

type Problem = components["schemas"]["Problem"];

const [baseUrl, key] = process.argv.slice(2);
if (!baseUrl || !key) throw new Error("usage: node roundtrip.js <base url> <api key>");

const client = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${key}` } });

function check(condition: boolean, what: string): asserts condition {
  if (!condition) throw new Error(`round trip: ${what}`);
}

function ok<T>(answer: { data?: T; error?: unknown; response: Response }, what: string): T {
  check(answer.error === undefined && answer.data !== undefined, `${what}: ${answer.response.status} ${JSON.stringify(answer.error)}`);
  return answer.data;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const session = ok(await client.POST("/v1/sessions", { body: { id: "ts-chat", user_id: "tess" } }), "create session");
check(session.id === "ts-chat" && session.user_id === "tess", "the session keeps its ids");

const path = { session_id: session.id };
const stored = ok(
  await client.POST("/v1/sessions/{session_id}/messages", {
    params: { path },
    body: {
      messages: [
        { role: "user", content: "I grow tomatoes on my balcony in Porto." },
        { role: "assistant", content: "Which variety?" },
        { role: "user", content: "Mostly San Marzano." },
      ],
    },
  }),
  "post messages",
);
check(stored.items.length === 3, "three messages stored");

const buffer = ok(await client.GET("/v1/sessions/{session_id}/buffer", { params: { path, query: { last_n: 2 } } }), "buffer");
check(buffer.messages.map((m) => m.content).join("|") === "Which variety?|Mostly San Marzano.", "the buffer holds the last two");

const written = ok(
  await client.POST("/v1/memories", {
    body: { user_id: "tess", content: "Tess keeps a sourdough starter named Bubbles.", importance: 0.8 },
  }),
  "create memory",
);
const memory = written.items[0].memory;
check(written.items.length === 1 && written.items[0].status === "created", "one memory created");

type MemoryHit = components["schemas"]["SearchHit"];
let found: MemoryHit | undefined;
for (let tries = 0; tries < 300 && !found; tries++) {
  // The vector index is written by a background job: a bounded poll.
  const results = ok(await client.POST("/v1/memories/search", { body: { query: "sourdough starter", user_id: "tess" } }), "search");
  found = results.items.find((hit): hit is MemoryHit => "memory" in hit && hit.memory.id === memory.id);
  if (!found) await sleep(100);
}
check(found !== undefined, "search finds the memory");

const context = ok(
  await client.POST("/v1/sessions/{session_id}/context", { params: { path }, body: { max_tokens: 400, query: "what does Tess bake?" } }),
  "context",
);
check(context.tokens <= 400 && context.prompt.includes("San Marzano"), "the context holds the recent messages within its budget");

const user = ok(await client.GET("/v1/users/{user_id}", { params: { path: { user_id: "tess" } } }), "user");
check(user.session_count === 1 && user.message_count === 3, "the user's counts");

ok(
  await client.PATCH("/v1/users/{user_id}/profile", { params: { path: { user_id: "tess" } }, body: { fields: { city: "Porto" } } }),
  "update profile",
);
const profile = ok(await client.GET("/v1/users/{user_id}/profile", { params: { path: { user_id: "tess" } } }), "profile");
check(profile.user_id === "tess" && profile.fields.city === "Porto", "the profile keeps its fields");

const missing = await client.GET("/v1/sessions/{session_id}", { params: { path: { session_id: "no-such-session" } } });
const problem: Problem | undefined = missing.error;
check(missing.response.status === 404 && problem?.code === "not_found", "a missing session is a typed 404 problem");
check(missing.response.headers.get("content-type")?.startsWith("application/problem+json") === true, "served as problem+json");

console.log(JSON.stringify({ session: session.id, memory: memory.id, score: found.score, context_tokens: context.tokens, problem: problem.code }));
