// A local GitHub REST API for lookctl's notification tests. Every request is checked
// against GitHub's published OpenAPI description (the npm package @octokit/openapi, pinned
// in package.json / package-lock.json and installed by scripts/github-openapi):
//   - method + path must match one operation of the description (path templates);
//   - path and query parameters must satisfy their schemas;
//   - the JSON body must satisfy the operation's requestBody schema, with one stricter
//     rule than GitHub: a top-level key the schema does not declare is refused (GitHub
//     ignores it silently, which would hide a misspelt key).
// Answers are the description's own response examples (ids, urls), with the fields the
// test cares about filled in from a small in-memory state (deployments, comments).
//
// Usage: node server.mjs DEPS_DIR   (DEPS_DIR holds node_modules/ from scripts/github-openapi)
// Prints `listening PORT` on stdout once ready. Control endpoints (not GitHub's):
//   GET  /_mock/requests   every request so far, with {valid, errors, operationId}
//   POST /_mock/config     {"pulls": [n...], "fail": {"<operationId>": {"status": 500, "times": n} |
//                           {"hang": true}}, "comments": {"n": [{"body": ...}]}}
//   POST /_mock/validate   {"method","path","body"}: validate only, answer {valid, errors}
//   POST /hooks/...        a webhook receiver: records the JSON body, answers 200 "ok"
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const deps = process.argv[2];
if (!deps) {
  console.error("usage: node server.mjs DEPS_DIR");
  process.exit(2);
}
const require = createRequire(path.join(path.resolve(deps), "node_modules", "_.js"));
const Ajv = require("ajv").default;
const addFormats = require("ajv-formats").default;
const specPath = require.resolve("@octokit/openapi/generated/api.github.com.json");
const spec = JSON.parse(fs.readFileSync(specPath, "utf8"));

const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: true });
addFormats(ajv);
ajv.addSchema({ $id: "spec", components: spec.components });

// "#/components/..." inside the description → "spec#/components/..." for ajv.
function rebase(schema) {
  if (Array.isArray(schema)) return schema.map(rebase);
  if (schema && typeof schema === "object") {
    const out = {};
    for (const [k, v] of Object.entries(schema)) {
      out[k] = k === "$ref" && typeof v === "string" && v.startsWith("#/") ? "spec" + v : rebase(v);
    }
    return out;
  }
  return schema;
}

function deref(obj) {
  let cur = obj;
  while (cur && cur.$ref) {
    cur = cur.$ref
      .slice(2)
      .split("/")
      .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"))
      .reduce((o, k) => o[k], spec);
  }
  return cur;
}

// Operations, most literal first so that /repos/{o}/{r}/issues/comments/{id} wins over
// /repos/{o}/{r}/issues/{issue_number}/comments-like templates.
const operations = [];
for (const [template, item] of Object.entries(spec.paths)) {
  const names = [];
  const re = new RegExp(
    "^" +
      template
        .split("/")
        .map((seg) => {
          const m = seg.match(/^\{(.+)\}$/);
          if (!m) return seg.replace(/[.*+?^$()|[\]\\]/g, "\\$&");
          names.push(m[1]);
          return "([^/]+)";
        })
        .join("/") +
      "$",
  );
  for (const method of ["get", "post", "patch", "put", "delete"]) {
    if (!item[method]) continue;
    const op = item[method];
    const params = [...(item.parameters || []), ...(op.parameters || [])].map(deref);
    operations.push({ template, method, op, re, names, params, literal: template.split("/").filter((s) => !s.startsWith("{")).length });
  }
}
operations.sort((a, b) => b.literal - a.literal);

const compiled = new Map();
function validator(key, schema) {
  if (!compiled.has(key)) compiled.set(key, ajv.compile(rebase(schema)));
  return compiled.get(key);
}

function coerce(value, schema) {
  const s = deref(schema) || {};
  if ((s.type === "integer" || s.type === "number") && /^-?\d+(\.\d+)?$/.test(value)) return Number(value);
  if (s.type === "boolean" && (value === "true" || value === "false")) return value === "true";
  return value;
}

function errorsOf(v, where) {
  return (v.errors || []).map((e) => `${where}${e.instancePath} ${e.message}${e.params && e.params.additionalProperty ? ` (${e.params.additionalProperty})` : ""}`);
}

/// The operation a request matches and every way it breaks the description.
function validate(method, url, body) {
  const u = new URL(url, "http://localhost");
  const m = method.toLowerCase();
  const found = operations.find((o) => o.method === m && o.re.test(u.pathname));
  if (!found) {
    return { valid: false, errors: [`no operation of the OpenAPI description matches ${method} ${u.pathname}`] };
  }
  const errors = [];
  const match = u.pathname.match(found.re);
  const pathValues = Object.fromEntries(found.names.map((n, i) => [n, decodeURIComponent(match[i + 1])]));
  for (const p of found.params) {
    if (p.in !== "path" && p.in !== "query") continue;
    const raw = p.in === "path" ? pathValues[p.name] : u.searchParams.get(p.name);
    if (raw === null || raw === undefined) {
      if (p.required) errors.push(`${p.in} parameter ${p.name} is required`);
      continue;
    }
    const v = validator(`param:${found.template}:${m}:${p.name}`, p.schema || {});
    if (!v(coerce(raw, p.schema || {}))) errors.push(...errorsOf(v, `${p.in} parameter ${p.name}`));
  }
  for (const name of u.searchParams.keys()) {
    if (!found.params.some((p) => p.in === "query" && p.name === name)) errors.push(`query parameter ${name} is not in the description`);
  }
  const rb = deref(found.op.requestBody);
  if (rb) {
    const media = rb.content && rb.content["application/json"];
    if (body === undefined) {
      if (rb.required) errors.push("a JSON request body is required");
    } else if (media && media.schema) {
      let schema = deref(media.schema);
      if (schema.type === "object" && schema.properties && schema.additionalProperties === undefined) {
        schema = { ...schema, additionalProperties: false };
      }
      const v = validator(`body:${found.template}:${m}`, schema);
      if (!v(body)) errors.push(...errorsOf(v, "body"));
    }
  } else if (body !== undefined) {
    errors.push("this operation takes no request body");
  }
  return { valid: errors.length === 0, errors, found, pathValues, query: Object.fromEntries(u.searchParams) };
}

/// The description's example for the operation's first success response.
function example(op) {
  const codes = Object.keys(op.responses).filter((c) => /^2/.test(c)).sort();
  const code = Number(codes[0] || 200);
  const response = deref(op.responses[codes[0]]);
  const media = response && response.content && response.content["application/json"];
  let value = null;
  if (media) {
    const ex = media.examples && Object.values(media.examples)[0];
    value = ex ? deref(ex).value : media.example ?? null;
  }
  return { code, value: value === null ? null : structuredClone(value) };
}

const state = { requests: [], pulls: [], fail: {}, comments: {}, deployments: [], nextId: 1000 };

function respond(res, code, value, headers = {}) {
  const text = value === null || value === undefined ? "" : JSON.stringify(value);
  res.writeHead(code, { "content-type": "application/json; charset=utf-8", ...headers });
  res.end(text);
}

function handleGithub(req, res, body, record) {
  const result = validate(req.method, req.url, body);
  record.valid = result.valid;
  record.errors = result.errors;
  if (!result.found) return respond(res, 404, { message: "Not Found", errors: result.errors });
  const opId = result.found.op.operationId;
  record.operationId = opId;
  const auth = req.headers.authorization || "";
  if (!/^(Bearer|token) \S+$/.test(auth)) {
    record.valid = false;
    record.errors.push("no Authorization token");
    return respond(res, 401, { message: "Requires authentication" });
  }
  if (!result.valid) return respond(res, 422, { message: "Validation Failed", errors: result.errors });
  const fail = state.fail[opId];
  if (fail && (fail.times === undefined || fail.times > 0)) {
    if (fail.times !== undefined) fail.times -= 1;
    if (fail.hang) return; // never answers: the client's timeout must end it
    return respond(res, fail.status || 500, { message: "Server Error" });
  }
  const { code, value } = example(result.found.op);
  const p = result.pathValues;
  const base = `http://${req.headers.host}/repos/${p.owner}/${p.repo}`;
  switch (opId) {
    case "repos/create-deployment": {
      const id = state.nextId++;
      Object.assign(value, {
        id,
        url: `${base}/deployments/${id}`,
        statuses_url: `${base}/deployments/${id}/statuses`,
        sha: body.ref,
        ref: body.ref,
        environment: body.environment,
        original_environment: body.environment,
        transient_environment: !!body.transient_environment,
        production_environment: !!body.production_environment,
      });
      state.deployments.push(value);
      return respond(res, code, value);
    }
    case "repos/list-deployments": {
      const q = result.query;
      const list = state.deployments.filter((d) => (!q.sha || d.sha === q.sha) && (!q.environment || d.environment === q.environment));
      return respond(res, 200, list.slice().reverse());
    }
    case "repos/create-deployment-status": {
      Object.assign(value, { id: state.nextId++, state: body.state, url: `${base}/deployments/${p.deployment_id}/statuses/1` });
      return respond(res, code, value);
    }
    case "repos/list-pull-requests-associated-with-commit": {
      const template = value[0];
      return respond(res, 200, state.pulls.map((n) => ({ ...structuredClone(template), number: n, state: "open" })));
    }
    case "issues/list-comments": {
      const list = state.comments[p.issue_number] || [];
      return respond(res, 200, list.map((c) => ({ ...structuredClone(value[0]), ...c })));
    }
    case "issues/create-comment": {
      const id = state.nextId++;
      const comment = { id, body: body.body, url: `${base}/issues/comments/${id}` };
      (state.comments[p.issue_number] ||= []).push(comment);
      return respond(res, code, { ...value, ...comment });
    }
    case "issues/update-comment": {
      for (const list of Object.values(state.comments)) {
        const c = list.find((c) => String(c.id) === p.comment_id);
        if (c) {
          c.body = body.body;
          return respond(res, code, { ...value, ...c });
        }
      }
      return respond(res, 404, { message: "Not Found" });
    }
    default:
      return respond(res, code, value);
  }
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const text = Buffer.concat(chunks).toString("utf8");
    let body;
    let parseError = null;
    if (text.length > 0) {
      try {
        body = JSON.parse(text);
      } catch (e) {
        parseError = `the body is not JSON: ${e.message}`;
      }
    }
    const u = new URL(req.url, "http://localhost");
    if (u.pathname === "/_mock/requests") return respond(res, 200, state.requests);
    if (u.pathname === "/_mock/config") {
      if (body.pulls) state.pulls = body.pulls;
      if (body.fail) state.fail = body.fail;
      if (body.comments) state.comments = body.comments;
      return respond(res, 200, { ok: true });
    }
    if (u.pathname === "/_mock/validate") {
      const r = validate(body.method, body.path, body.body);
      return respond(res, 200, { valid: r.valid, errors: r.errors, operationId: r.found && r.found.op.operationId });
    }
    const record = {
      method: req.method,
      path: u.pathname,
      query: Object.fromEntries(u.searchParams),
      body: parseError ? text : body,
      authorization: req.headers.authorization || null,
      contentType: req.headers["content-type"] || null,
      userAgent: req.headers["user-agent"] || null,
      valid: true,
      errors: [],
    };
    state.requests.push(record);
    if (u.pathname.startsWith("/hooks/")) {
      record.operationId = "webhook";
      if (parseError) {
        record.valid = false;
        record.errors.push(parseError);
        return respond(res, 400, { error: parseError });
      }
      const fail = state.fail.webhook;
      if (fail && (fail.times === undefined || fail.times > 0)) {
        if (fail.times !== undefined) fail.times -= 1;
        if (fail.hang) return;
        return respond(res, fail.status || 500, { error: "failed" });
      }
      res.writeHead(200, { "content-type": "text/plain" });
      return res.end("ok");
    }
    if (parseError) {
      record.valid = false;
      record.errors.push(parseError);
      return respond(res, 400, { message: "Problems parsing JSON" });
    }
    try {
      handleGithub(req, res, body, record);
    } catch (e) {
      record.valid = false;
      record.errors.push(`mock failure: ${e.stack}`);
      respond(res, 500, { message: String(e) });
    }
  });
});

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
// The test closes our stdin (or dies): stop with it.
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
