// Drives the official JS SDK (openai-node, installed by `make openai-node`) against the API,
// as an application would: `node openai_node.mjs <sdk dir> <request.json>`.
//
// request.json: {baseURL, apiKey, audio (a path), calls: [{endpoint, params}]}, where endpoint is
// "transcriptions" or "translations". The audio is uploaded with toFile(...), the upload form
// openai-node can retry. Prints one JSON line: each call's result (or error status and body) and
// the request headers the SDK sent (the Authorization value blanked), from the fetch it was given.
// A call with `stream: true` iterates the SDK's Stream as an application would: its result is
// {ok, events} (and error and status when the stream ended with an error).
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [sdkDir, requestPath] = process.argv.slice(2);
const { default: OpenAI, toFile } = await import(
  pathToFileURL(join(sdkDir, 'node_modules', 'openai', 'index.mjs')).href
);
const request = JSON.parse(await readFile(requestPath, 'utf8'));

const sentHeaders = [];
const client = new OpenAI({
  baseURL: request.baseURL,
  apiKey: request.apiKey,
  organization: 'org-tinyscribe-test',
  project: 'proj_tinyscribe_test',
  maxRetries: 0,
  fetch: async (url, init) => {
    const headers = [...new Headers(init.headers).entries()];
    sentHeaders.push(headers.map(([name, value]) => [name, name === 'authorization' ? '' : value]));
    return fetch(url, init);
  },
});

const audio = await readFile(request.audio);
const results = [];
for (const { endpoint, params } of request.calls) {
  const file = await toFile(audio, basename(request.audio));
  const events = [];
  try {
    const result = await client.audio[endpoint].create({ file, ...params });
    if (params.stream) {
      for await (const event of result) events.push(event);
      results.push({ ok: true, events });
    } else {
      results.push({ ok: true, result });
    }
  } catch (error) {
    results.push({ ok: false, status: error.status ?? null, error: error.error ?? String(error), events });
  }
}
console.log(JSON.stringify({ results, sentHeaders }));
