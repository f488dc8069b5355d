#!/usr/bin/env node
// Example client of the maas suite through the gateway. `node examples.mjs --help` for usage.
import { parseArgs } from "node:util";
import { Maas, describeError } from "./maas.mjs";

const USAGE = `usage: node examples.mjs [options] <command> [text ...]

commands:
  services                    the gRPC services found in protos/
  sentiment TEXT...           maas.nlp.v1.NlpAnalysis/AnalyzeSentiment
  classify TEXT... [--labels a,b]   ClassifyText (zero-shot with --labels, else built-in moods and genres)
  entities TEXT...            ExtractEntities
  embed TEXT...               EmbedText
  generate PROMPT             maas.textgen.v1.TextGenerator/Generate
  stream PROMPT               GenerateStream: prints the text as it arrives
  live                        inference.GRPCInferenceService/ServerLive (KServe v2)
  metadata MODEL              ModelMetadata (KServe v2)
  all                         a tour of the calls above (generation: 40 tokens, seed 7, unless given)

options:
  --target HOST:PORT          default $MAAS_TARGET or 127.0.0.1:50051 (the gateway); $MAAS_API_KEY is sent if set
  --deadline-ms N             each call's deadline (default 30000)
  --json                      JSON out (stream: one object per message, as they arrive)
  --request-id ID             sent as x-request-id
  --labels a,b,...            candidate labels (classify)
  --chat                      send PROMPT as a user chat message instead of a plain prompt
  --max-new-tokens N  --temperature T  --top-p P  --top-k K  --seed S  --stop STR (repeatable)

A failed call prints "error: CODE: message" (and each field violation) on stderr and exits 1.`;

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      target: { type: "string" }, "deadline-ms": { type: "string", default: "30000" },
      json: { type: "boolean", default: false }, "request-id": { type: "string" },
      labels: { type: "string" }, chat: { type: "boolean", default: false },
      "max-new-tokens": { type: "string" }, temperature: { type: "string" }, "top-p": { type: "string" },
      "top-k": { type: "string" }, seed: { type: "string" }, stop: { type: "string", multiple: true },
      help: { type: "boolean", short: "h", default: false },
    },
  });
} catch (err) {
  console.error(`${err.message}\n\n${USAGE}`); // e.g. a negative number: write --temperature=-1
  process.exit(2);
}
const { values: opt, positionals } = parsed;

const [command, ...texts] = positionals;
if (opt.help || !command) {
  console.log(USAGE);
  process.exit(opt.help ? 0 : 2);
}

const maas = new Maas(opt.target ? { target: opt.target } : {});
const callOpts = { deadlineMs: Number(opt["deadline-ms"]), requestId: opt["request-id"] };
const out = (obj) => console.log(JSON.stringify(obj));
const needText = () => {
  if (!texts.length) throw new UsageError(`${command} needs at least one text`);
  return texts;
};

class UsageError extends Error {}

function generateRequest(prompt) {
  const r = opt.chat ? { messages: [{ role: "user", content: prompt }] } : { prompt };
  if (opt["max-new-tokens"] !== undefined) r.max_new_tokens = Number(opt["max-new-tokens"]);
  if (opt.temperature !== undefined) r.temperature = Number(opt.temperature);
  if (opt["top-p"] !== undefined) r.top_p = Number(opt["top-p"]);
  if (opt["top-k"] !== undefined) r.top_k = Number(opt["top-k"]);
  if (opt.seed !== undefined) r.seed = opt.seed; // uint64: a decimal string keeps every bit
  if (opt.stop) r.stop = opt.stop;
  return r;
}

const fmt = (x) => Number(x).toFixed(3);

async function sentiment(t = needText()) {
  const r = await maas.analyzeSentiment(t, callOpts);
  if (opt.json) return out(r);
  r.results.forEach((s, i) => console.log(
    `${s.label.replace("SENTIMENT_", "").padEnd(8)} neg=${fmt(s.negative)} neu=${fmt(s.neutral)} pos=${fmt(s.positive)}  ${t[i]}`));
}

async function classify(t = needText(), labels = opt.labels ? opt.labels.split(",") : []) {
  const r = await maas.classifyText(t, labels, callOpts);
  if (opt.json) return out(r);
  r.results.forEach((c, i) => {
    console.log(t[i]);
    for (const s of c.scores.slice(0, 5)) console.log(`  ${fmt(s.score)}  ${s.group ? s.group + "/" : ""}${s.label}`);
  });
}

async function entities(t = needText()) {
  const r = await maas.extractEntities(t, callOpts);
  if (opt.json) return out(r);
  r.results.forEach((list, i) => {
    console.log(t[i]);
    for (const e of list.entities) console.log(`  ${e.label.padEnd(12)} ${e.text}  [${e.span.start}, ${e.span.end})  ${fmt(e.score)}`);
  });
}

async function embed(t = needText()) {
  const r = await maas.embedText(t, callOpts);
  if (opt.json) return out(r);
  r.embeddings.forEach((e, i) => {
    const norm = Math.sqrt(e.values.reduce((a, v) => a + v * v, 0));
    console.log(`dimension ${r.dimension}  norm ${fmt(norm)}  [${e.values.slice(0, 4).map(fmt).join(", ")}, ...]  ${t[i]}`);
  });
}

async function generate(prompt = needText().join(" ")) {
  const r = await maas.generate(generateRequest(prompt), callOpts);
  if (opt.json) return out(r);
  console.log(r.text);
  console.log(`[${r.finish_reason.replace("FINISH_REASON_", "")}, ${r.completion_tokens} tokens, seed ${r.seed}]`);
}

async function stream(prompt = needText().join(" ")) {
  let last;
  for await (const event of maas.generateStream(generateRequest(prompt), callOpts)) {
    if (opt.json) out(event);
    else process.stdout.write(event.text);
    last = event;
  }
  if (!opt.json && last) {
    console.log(`\n[${last.finish_reason.replace("FINISH_REASON_", "")}, ${last.completion_tokens} tokens, seed ${last.seed}]`);
  }
}

async function live() {
  const r = await maas.serverLive(callOpts);
  if (opt.json) return out(r);
  console.log(`live: ${r.live}`);
}

async function metadata(name = needText()[0]) {
  const r = await maas.modelMetadata(name, callOpts);
  if (opt.json) return out(r);
  console.log(`${r.name} (${r.platform}) versions ${r.versions.join(", ")}`);
  for (const [kind, list] of [["input", r.inputs], ["output", r.outputs]]) {
    for (const t of list) console.log(`  ${kind} ${t.name} ${t.datatype} [${t.shape.join(", ")}]`);
  }
}

async function all() {
  const step = async (title, fn) => {
    if (!opt.json) console.log(`\n== ${title}`);
    await fn();
  };
  await step("AnalyzeSentiment", () => sentiment(["I love this record!", "What a dull, boring film."]));
  await step("ClassifyText (zero-shot)", () => classify(["The striker scored twice in the final"], ["sports", "politics", "music"]));
  await step("EmbedText", () => embed(["calm piano for studying"]));
  opt["max-new-tokens"] ??= "40"; // the tour keeps generation short, and seeded: the stream repeats Generate's text
  opt.seed ??= "7";
  await step("Generate", () => generate("Once upon a time"));
  await step("GenerateStream", () => stream("Once upon a time"));
  await step("ServerLive (KServe v2)", live);
  await step("ModelMetadata text-encoder", () => metadata("text-encoder"));
}

const commands = {
  services: async () => (opt.json ? out(maas.services()) : console.log(maas.services().join("\n"))),
  sentiment, classify, entities, embed, generate, stream, live, metadata, all,
};

try {
  const fn = commands[command];
  if (!fn) throw new UsageError(`unknown command ${command}`);
  await fn();
  process.exitCode = 0;
} catch (err) {
  if (err instanceof UsageError) {
    console.error(`${err.message}\n\n${USAGE}`);
    process.exitCode = 2;
  } else if (typeof err.code === "number") {
    const e = describeError(err);
    if (opt.json) out({ error: e });
    console.error(`error: ${e.code}: ${e.message}`);
    for (const v of e.field_violations ?? []) console.error(`  ${v.field}: ${v.description}`);
    if (e.retry_after_s !== undefined) console.error(`  retry after ${e.retry_after_s} s`);
    if (e.request_id) console.error(`  request id ${e.request_id}`);
    process.exitCode = 1;
  } else {
    throw err;
  }
} finally {
  maas.close();
}
