// Talks to a running morphserve with the official OpenAI client: completions and chat, streaming
// and not, plus the errors a client must see as APIError. Usage: node client.mjs http://HOST:PORT
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const base = process.argv[2];
const model = 'dummy:tiny';

async function waitReady() {
  for (let i = 0; i < 600; i++) {
    try {
      const r = await fetch(`${base}/health`);
      if (r.status === 200) return;
    } catch {}
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('the server did not become ready within 60 s');
}

await waitReady();
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'not-needed', maxRetries: 0, timeout: 60_000 });

const models = await client.models.list();
assert.equal(models.data.length, 1);
assert.equal(models.data[0].id, model);

// Completions: whole, then streamed with usage; the stream must spell the same text.
const greedy = { model, prompt: 'Hello', max_tokens: 8, temperature: 0, ignore_eos: true };
const whole = await client.completions.create(greedy);
assert.equal(whole.object, 'text_completion');
assert.match(whole.id, /^cmpl-/);
assert.equal(whole.choices.length, 1);
assert.equal(whole.choices[0].finish_reason, 'length');
assert.equal(typeof whole.choices[0].text, 'string');
assert.equal(whole.usage.completion_tokens, 8);
assert.equal(whole.usage.total_tokens, whole.usage.prompt_tokens + 8);

let text = '';
let finish = null;
let usage = null;
const stream = await client.completions.create({ ...greedy, stream: true, stream_options: { include_usage: true } });
for await (const chunk of stream) {
  assert.equal(chunk.object, 'text_completion');
  if (chunk.usage) usage = chunk.usage;
  for (const choice of chunk.choices) {
    text += choice.text;
    if (choice.finish_reason) finish = choice.finish_reason;
  }
}
assert.equal(text, whole.choices[0].text);
assert.equal(finish, 'length');
assert.equal(usage.completion_tokens, 8);

// A stop string: the text ends before it and the finish reason says so.
const long = await client.completions.create({ ...greedy, max_tokens: 40 });
const ascii = [...long.choices[0].text].findIndex((c, i) => i > 0 && c.charCodeAt(0) < 0x80);
if (ascii > 0) {
  const chars = [...long.choices[0].text];
  const stop = chars[ascii];
  const stopped = await client.completions.create({ ...greedy, max_tokens: 40, stop: [stop] });
  assert.equal(stopped.choices[0].finish_reason, 'stop');
  assert.equal(stopped.choices[0].text, long.choices[0].text.slice(0, long.choices[0].text.indexOf(stop)));
}

// Chat: whole with logprobs, then streamed (role first, then content).
const messages = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Say something.' },
];
const chat = await client.chat.completions.create({
  model, messages, max_tokens: 6, temperature: 0, ignore_eos: true, logprobs: true, top_logprobs: 2,
});
assert.equal(chat.object, 'chat.completion');
assert.match(chat.id, /^chatcmpl-/);
assert.equal(chat.choices[0].message.role, 'assistant');
assert.equal(typeof chat.choices[0].message.content, 'string');
assert.equal(chat.choices[0].finish_reason, 'length');
assert.equal(chat.choices[0].logprobs.content.length, 6);
assert.equal(chat.choices[0].logprobs.content[0].top_logprobs.length, 2);
assert.equal(chat.usage.completion_tokens, 6);

let role = null;
let content = '';
finish = null;
const chatStream = await client.chat.completions.create({ model, messages, max_tokens: 6, temperature: 0, ignore_eos: true, stream: true });
for await (const chunk of chatStream) {
  assert.equal(chunk.object, 'chat.completion.chunk');
  const choice = chunk.choices[0];
  if (choice.delta.role) role = choice.delta.role;
  if (choice.delta.content) content += choice.delta.content;
  if (choice.finish_reason) finish = choice.finish_reason;
}
assert.equal(role, 'assistant');
assert.equal(content, chat.choices[0].message.content);
assert.equal(finish, 'length');

// Errors reach the client as typed APIErrors.
await assert.rejects(client.completions.create({ ...greedy, temperature: 5 }), (e) => {
  assert.ok(e instanceof OpenAI.BadRequestError, String(e));
  assert.equal(e.status, 400);
  assert.equal(e.param, 'temperature');
  return true;
});
await assert.rejects(client.chat.completions.create({ model: 'gpt-4o', messages }), (e) => {
  assert.equal(e.status, 400);
  assert.equal(e.code, 'model_not_found');
  return true;
});

console.log('OK: openai client: models, completions and chat (whole and streamed), stop, errors');
