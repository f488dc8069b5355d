// A small Node.js client for the maas suite: every .proto file under protos/ is loaded at run time with
// @grpc/proto-loader (no generated code), and each gRPC service found there gets a client. A service added
// to protos/ (maas.music.v1.*, ...) is callable without touching this file: maas.client("maas.music.v1.X").
import { readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";

const HERE = dirname(fileURLToPath(import.meta.url));
export const DEFAULT_PROTO_ROOT = resolve(HERE, "..", "..", "protos");
export const DEFAULT_TARGET = "127.0.0.1:50051";

/** Every .proto file below `root`, relative to it (how they import each other). */
export function protoFiles(root = DEFAULT_PROTO_ROOT) {
  const out = [];
  const walk = (dir) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith(".proto")) out.push(relative(root, path));
    }
  };
  walk(root);
  return out;
}

/** The package definition of every proto under `root`: field names as in the .proto (snake_case), enums as
 * their names, 64-bit integers as strings (JSON-safe), unset scalars filled with their defaults. */
export function loadDefinitions(root = DEFAULT_PROTO_ROOT) {
  return protoLoader.loadSync(protoFiles(root), {
    includeDirs: [root], keepCase: true, longs: String, enums: String, defaults: true,
  });
}

/** Fully qualified service names ("maas.nlp.v1.NlpAnalysis") in a package definition. */
export function serviceNames(definitions) {
  return Object.keys(definitions).filter((name) => {
    const d = definitions[name];
    return d && typeof d === "object" && !d.format && Object.values(d).every((m) => m && m.path);
  });
}

// google.rpc.Status and the details the suite sends (BadRequest, RetryInfo), decoded from the trailing metadata
// key grpc-status-details-bin. Declared here so that the client needs no googleapis checkout.
const RPC = protobuf.Root.fromJSON({
  nested: {
    google: {
      nested: {
        protobuf: {
          nested: {
            Any: { fields: { type_url: { type: "string", id: 1 }, value: { type: "bytes", id: 2 } } },
            Duration: { fields: { seconds: { type: "int64", id: 1 }, nanos: { type: "int32", id: 2 } } },
          },
        },
        rpc: {
          nested: {
            Status: {
              fields: {
                code: { type: "int32", id: 1 }, message: { type: "string", id: 2 },
                details: { rule: "repeated", type: "google.protobuf.Any", id: 3 },
              },
            },
            BadRequest: {
              fields: { field_violations: { rule: "repeated", type: "FieldViolation", id: 1 } },
              nested: {
                FieldViolation: {
                  fields: { field: { type: "string", id: 1 }, description: { type: "string", id: 2 } },
                },
              },
            },
            RetryInfo: { fields: { retry_delay: { type: "google.protobuf.Duration", id: 1 } } },
          },
        },
      },
    },
  },
});

export const CODE_NAMES = Object.fromEntries(Object.entries(grpc.status).map(([k, v]) => [v, k]));

/** What a failed call says: code name, message, field violations, retry delay, request id. */
export function describeError(err) {
  const out = { code: CODE_NAMES[err.code] ?? String(err.code), message: err.details ?? err.message };
  const md = err.metadata;
  const rid = md?.get("x-request-id")?.[0];
  if (rid) out.request_id = String(rid);
  const raw = md?.get("grpc-status-details-bin")?.[0];
  if (raw) {
    try {
      const status = RPC.lookupType("google.rpc.Status").decode(raw);
      for (const any of status.details) {
        const type = any.type_url.split("/").pop();
        if (type === "google.rpc.BadRequest") {
          const br = RPC.lookupType(type).decode(any.value);
          out.field_violations = br.field_violations.map((v) => ({ field: v.field, description: v.description }));
        } else if (type === "google.rpc.RetryInfo") {
          const ri = RPC.lookupType(type).decode(any.value);
          const d = ri.retry_delay;
          if (d) out.retry_after_s = Number(d.seconds || 0) + (d.nanos || 0) / 1e9;
        }
      }
    } catch {
      // undecodable details: the code and message still say what happened
    }
  }
  return out;
}

/** Clients for every service of the suite through one channel per service (the gateway by default).
 *  options: { target, apiKey, protoRoot, credentials } */
export class Maas {
  constructor({ target = process.env.MAAS_TARGET || DEFAULT_TARGET, apiKey = process.env.MAAS_API_KEY,
                protoRoot = DEFAULT_PROTO_ROOT, credentials = grpc.credentials.createInsecure() } = {}) {
    this.target = target;
    this.apiKey = apiKey;
    this.definitions = loadDefinitions(protoRoot);
    this.proto = grpc.loadPackageDefinition(this.definitions);
    this.credentials = credentials;
    this.clients = new Map();
  }

  services() {
    return serviceNames(this.definitions);
  }

  /** The generated-at-run-time client of one service, by its full name. */
  client(service) {
    if (!this.clients.has(service)) {
      const Ctor = service.split(".").reduce((o, k) => o?.[k], this.proto);
      if (typeof Ctor !== "function") throw new Error(`no service ${service} in the protos (${this.services().join(", ")})`);
      this.clients.set(service, new Ctor(this.target, this.credentials));
    }
    return this.clients.get(service);
  }

  metadata(requestId) {
    const md = new grpc.Metadata();
    if (this.apiKey) md.set("authorization", `Bearer ${this.apiKey}`);
    if (requestId) md.set("x-request-id", requestId);
    return md;
  }

  /** A unary call as a promise. deadlineMs: the call's deadline from now (default 30 s). */
  unary(service, method, request, { deadlineMs = 30000, requestId } = {}) {
    const client = this.client(service);
    if (typeof client[method] !== "function") throw new Error(`no method ${method} on ${service}`);
    return new Promise((resolveCall, reject) => {
      client[method](request, this.metadata(requestId), { deadline: Date.now() + deadlineMs },
        (err, response) => (err ? reject(err) : resolveCall(response)));
    });
  }

  /** A server-streaming call as an async iterator of its messages; errors are thrown by the iterator. */
  stream(service, method, request, { deadlineMs = 30000, requestId } = {}) {
    const client = this.client(service);
    return client[method](request, this.metadata(requestId), { deadline: Date.now() + deadlineMs });
  }

  // The suite's calls, named after the RPCs.
  analyzeSentiment(texts, opts) {
    return this.unary("maas.nlp.v1.NlpAnalysis", "AnalyzeSentiment", { texts }, opts);
  }

  classifyText(texts, candidateLabels = [], opts) {
    return this.unary("maas.nlp.v1.NlpAnalysis", "ClassifyText", { texts, candidate_labels: candidateLabels }, opts);
  }

  extractEntities(texts, opts) {
    return this.unary("maas.nlp.v1.NlpAnalysis", "ExtractEntities", { texts }, opts);
  }

  embedText(texts, opts) {
    return this.unary("maas.nlp.v1.NlpAnalysis", "EmbedText", { texts }, opts);
  }

  generate(request, opts) {
    return this.unary("maas.textgen.v1.TextGenerator", "Generate", request, opts);
  }

  generateStream(request, opts) {
    return this.stream("maas.textgen.v1.TextGenerator", "GenerateStream", request, opts);
  }

  serverLive(opts) {
    return this.unary("inference.GRPCInferenceService", "ServerLive", {}, opts);
  }

  modelMetadata(name, opts) {
    return this.unary("inference.GRPCInferenceService", "ModelMetadata", { name }, opts);
  }

  close() {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
