// The API reference: reads /api/openapi.json and renders its operations by tag, with their
// parameters, request bodies, responses and schemas. Vietnamese first, with the screens'
// English toggle (the same stored choice, "ktxh.lang"). Text from the document is only ever
// set as text, never as markup.

const STORAGE_KEY = "ktxh.lang";

const STRINGS = {
  vi: {
    subtitle: "Tài liệu API",
    raw: "Tài liệu OpenAPI (JSON)",
    filter: "Lọc theo đường dẫn, tên…",
    contents: "Mục lục",
    loading: "Đang tải…",
    load_failed: "Không tải được tài liệu API: {error}",
    lang_toggle: "English",
    parameters: "Tham số",
    request_body: "Nội dung gửi",
    responses: "Phản hồi",
    schemas: "Lược đồ dữ liệu",
    name: "Tên",
    where: "Vị trí",
    type: "Kiểu",
    description: "Mô tả",
    field: "Trường",
    status: "Mã",
    content: "Định dạng",
    required: "bắt buộc",
    example: "Ví dụ",
    no_auth: "Không cần xác thực",
    auth: "Xác thực: {schemes}",
    one_of: "một trong",
    all_of: "gồm",
    any: "bất kỳ",
    version: "phiên bản {version}",
  },
  en: {
    subtitle: "API reference",
    raw: "OpenAPI document (JSON)",
    filter: "Filter by path, name…",
    contents: "Contents",
    loading: "Loading…",
    load_failed: "The API document could not be loaded: {error}",
    lang_toggle: "Tiếng Việt",
    parameters: "Parameters",
    request_body: "Request body",
    responses: "Responses",
    schemas: "Schemas",
    name: "Name",
    where: "In",
    type: "Type",
    description: "Description",
    field: "Field",
    status: "Status",
    content: "Content type",
    required: "required",
    example: "Example",
    no_auth: "No authentication",
    auth: "Authentication: {schemes}",
    one_of: "one of",
    all_of: "all of",
    any: "any",
    version: "version {version}",
  },
};

const METHODS = ["get", "put", "post", "delete", "patch", "head", "options"];

function storedLang() {
  try {
    const saved = localStorage.getItem(STORAGE_KEY);
    if (saved === "vi" || saved === "en") return saved;
  } catch {
    // Storage may be disabled; Vietnamese is the default.
  }
  return "vi";
}

let lang = storedLang();
let spec = null;

function t(key, params = {}) {
  const template = STRINGS[lang][key] ?? key;
  return template.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ""));
}

/** The part of a "tiếng Việt / English" text in the current language. */
function pick(text) {
  if (!text) return "";
  const parts = text.split(" / ");
  if (parts.length !== 2) return text;
  return lang === "vi" ? parts[0] : parts[1];
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Inline markdown: `code` and **bold**, as text nodes and elements. */
function inline(text) {
  const nodes = [];
  for (const piece of text.split(/(`[^`]+`|\*\*[^*]+\*\*)/)) {
    if (!piece) continue;
    if (piece.startsWith("`") && piece.endsWith("`")) nodes.push(el("code", {}, piece.slice(1, -1)));
    else if (piece.startsWith("**") && piece.endsWith("**")) nodes.push(el("strong", {}, piece.slice(2, -2)));
    else nodes.push(piece);
  }
  return nodes;
}

/** Paragraphs of a description (blank lines apart); single line breaks are soft. */
function prose(text) {
  if (!text) return [];
  return text
    .split(/\n\s*\n/)
    .map((block) => block.replace(/\s*\n\s*/g, " ").trim())
    .filter(Boolean)
    .map((block) => el("p", {}, inline(block)));
}

function refName(ref) {
  return ref.split("/").pop();
}

function schemaLink(ref) {
  const name = refName(ref);
  return el("a", { href: `#schema-${name}` }, name);
}

/** A short type expression for a schema: `string`, `Alert[]`, `one of A | B`, … */
function typeOf(schema) {
  if (!schema || Object.keys(schema).length === 0) return [t("any")];
  if (schema.$ref) return [schemaLink(schema.$ref)];
  for (const [key, label] of [["oneOf", "one_of"], ["anyOf", "one_of"], ["allOf", "all_of"]]) {
    if (schema[key]) {
      const parts = schema[key].flatMap((part, i) => (i ? [" | ", ...typeOf(part)] : typeOf(part)));
      return [`${t(label)} `, ...parts];
    }
  }
  const types = Array.isArray(schema.type) ? schema.type : [schema.type ?? "object"];
  const shown = types.filter((type) => type !== "null");
  const nullable = types.includes("null") ? "?" : "";
  if (shown[0] === "array") return [...typeOf(schema.items), `[]${nullable}`];
  let text = shown.join(" | ");
  if (schema.enum) text = schema.enum.map((v) => JSON.stringify(v)).join(" | ");
  else if (schema.format) text += ` (${schema.format})`;
  if (shown[0] === "object" && schema.additionalProperties && !schema.properties) {
    return ["map → ", ...typeOf(schema.additionalProperties)];
  }
  return [text + nullable];
}

function constraints(schema) {
  const notes = [];
  for (const key of ["minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems", "pattern"]) {
    if (schema?.[key] !== undefined) notes.push(`${key}: ${schema[key]}`);
  }
  return notes.length ? el("div", { class: "type" }, notes.join(", ")) : null;
}

function example(value) {
  if (value === undefined) return null;
  const text = typeof value === "string" ? value : JSON.stringify(value, null, 2);
  return el("details", {}, el("summary", {}, t("example")), el("pre", {}, text));
}

function parametersTable(parameters) {
  const rows = parameters.map((p) =>
    el(
      "tr",
      {},
      el("td", {}, el("code", {}, p.name), p.required ? el("div", { class: "required" }, t("required")) : null),
      el("td", {}, p.in),
      el("td", { class: "type" }, typeOf(p.schema), constraints(p.schema)),
      el("td", {}, prose(pick(p.description ?? p.schema?.description ?? ""))),
    ),
  );
  const head = el("tr", {}, ["name", "where", "type", "description"].map((k) => el("th", {}, t(k))));
  return el("table", {}, el("thead", {}, head), el("tbody", {}, rows));
}

function contentList(content) {
  return Object.entries(content ?? {}).map(([media, body]) =>
    el("div", {}, el("code", {}, media), " → ", el("span", { class: "type" }, typeOf(body.schema)), example(body.example)),
  );
}

/** A `$ref` to a shared response, or the response itself. */
function resolveResponse(response) {
  if (!response.$ref) return response;
  return spec.components?.responses?.[refName(response.$ref)] ?? response;
}

function responsesTable(responses) {
  const rows = Object.entries(responses).map(([status, raw]) => {
    const response = resolveResponse(raw);
    const kind = status.startsWith("2") || status.startsWith("1") ? "ok" : "error";
    return el(
      "tr",
      {},
      el("td", { class: `status ${kind}` }, status),
      el("td", {}, prose(pick(response.description)), contentList(response.content)),
    );
  });
  const head = el("tr", {}, el("th", {}, t("status")), el("th", {}, t("description")));
  return el("table", {}, el("thead", {}, head), el("tbody", {}, rows));
}

function security(operation) {
  const requirements = operation.security ?? [];
  const schemes = requirements.flatMap((requirement) => Object.keys(requirement));
  if (schemes.length === 0) return el("p", { class: "security" }, t("no_auth"));
  return el("p", { class: "security" }, t("auth", { schemes: schemes.join(", ") }));
}

function operationCard(method, path, operation) {
  const id = `op-${method}-${path.replace(/[^A-Za-z0-9]+/g, "-")}`;
  const [summary, ...rest] = (operation.description ?? operation.summary ?? "").split(/\n\s*\n/);
  const card = el(
    "section",
    { class: "operation", id, "data-method": method, "data-filter": `${method} ${path} ${summary}`.toLowerCase() },
    el("h3", {}, el("span", { class: `method ${method}` }, method), el("span", { class: "path" }, path)),
    el("p", { class: "summary" }, inline(operation.summary ?? summary)),
    prose(operation.summary ? operation.description : rest.join("\n\n")),
    security(operation),
  );
  if (operation.parameters?.length) card.append(el("h4", {}, t("parameters")), parametersTable(operation.parameters));
  if (operation.requestBody) {
    card.append(
      el("h4", {}, t("request_body")),
      ...prose(pick(operation.requestBody.description)),
      ...contentList(operation.requestBody.content),
    );
  }
  card.append(el("h4", {}, t("responses")), responsesTable(operation.responses ?? {}));
  return card;
}

/** The properties of an object schema, with those of its `allOf` parts. */
function propertyRows(schema, seen = new Set()) {
  if (!schema) return [];
  if (schema.$ref) {
    const name = refName(schema.$ref);
    if (seen.has(name)) return [];
    seen.add(name);
    return propertyRows(spec.components?.schemas?.[name], seen);
  }
  const rows = (schema.allOf ?? []).flatMap((part) => propertyRows(part, seen));
  const required = new Set(schema.required ?? []);
  for (const [name, property] of Object.entries(schema.properties ?? {})) {
    rows.push(
      el(
        "tr",
        {},
        el("td", {}, el("code", {}, name), required.has(name) ? el("div", { class: "required" }, t("required")) : null),
        el("td", { class: "type" }, typeOf(property), constraints(property)),
        el("td", {}, prose(property.description ?? "")),
      ),
    );
  }
  return rows;
}

function schemaCard(name, schema) {
  const card = el("section", { class: "schema", id: `schema-${name}`, "data-filter": name.toLowerCase() });
  card.append(el("h3", {}, name), ...prose(schema.description));
  const rows = propertyRows(schema);
  if (rows.length) {
    const head = el("tr", {}, ["field", "type", "description"].map((k) => el("th", {}, t(k))));
    card.append(el("table", {}, el("thead", {}, head), el("tbody", {}, rows)));
  }
  if (!schema.properties || schema.oneOf || schema.enum) {
    card.append(el("p", { class: "type" }, typeOf({ ...schema, allOf: rows.length ? undefined : schema.allOf })));
  }
  card.append(example(schema.example) ?? "");
  return card;
}

function introduction(info) {
  // The description is Vietnamese, then English, parted by a rule.
  const [vi, en] = (info.description ?? "").split(/\n-{3,}\n/);
  return el("section", { class: "intro" }, prose(lang === "en" && en ? en : vi));
}

function render() {
  const nav = document.getElementById("nav");
  const content = document.getElementById("content");
  nav.replaceChildren();
  content.replaceChildren();
  document.getElementById("title").textContent = spec.info.title;
  document.getElementById("version").textContent = t("version", { version: spec.info.version });
  content.append(introduction(spec.info));

  const byTag = new Map((spec.tags ?? []).map((tag) => [tag.name, []]));
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const method of METHODS) {
      if (!item[method]) continue;
      const tag = item[method].tags?.[0] ?? "";
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push([method, path, item[method]]);
    }
  }
  const descriptions = new Map((spec.tags ?? []).map((tag) => [tag.name, tag.description]));
  for (const [tag, operations] of byTag) {
    if (operations.length === 0) continue;
    const section = el("section", { class: "tag", id: `tag-${tag}` });
    section.append(el("h2", {}, tag), el("p", { class: "tag-description" }, pick(descriptions.get(tag))));
    nav.append(el("h2", {}, tag));
    for (const [method, path, operation] of operations) {
      const card = operationCard(method, path, operation);
      section.append(card);
      nav.append(
        el("a", { href: `#${card.id}`, "data-filter": card.dataset.filter }, el("span", { class: `method ${method}` }, method), path),
      );
    }
    content.append(section);
  }

  const schemas = Object.entries(spec.components?.schemas ?? {}).sort(([a], [b]) => a.localeCompare(b));
  const section = el("section", { class: "tag", id: "schemas" }, el("h2", {}, t("schemas")));
  nav.append(el("h2", {}, el("a", { href: "#schemas" }, t("schemas"))));
  for (const [name, schema] of schemas) section.append(schemaCard(name, schema));
  content.append(section);
  applyFilter();
  if (location.hash) document.getElementById(decodeURIComponent(location.hash.slice(1)))?.scrollIntoView();
}

function applyFilter() {
  const wanted = document.getElementById("filter").value.trim().toLowerCase();
  for (const node of document.querySelectorAll("[data-filter]")) {
    node.hidden = wanted !== "" && !node.dataset.filter.includes(wanted);
  }
}

function applyStatic() {
  document.documentElement.lang = lang;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of document.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of node.dataset.i18nAttr.split(",")) {
      const [attr, key] = pair.split(":");
      node.setAttribute(attr, t(key));
    }
  }
  // The toggle names the other language, in that language.
  document.querySelector("[data-i18n=lang_toggle]").lang = lang === "vi" ? "en" : "vi";
}

document.getElementById("lang-toggle").addEventListener("click", () => {
  lang = lang === "vi" ? "en" : "vi";
  try {
    localStorage.setItem(STORAGE_KEY, lang);
  } catch {
    // Not remembered, but the switch applies to this page.
  }
  applyStatic();
  if (spec) render();
});
document.getElementById("filter").addEventListener("input", applyFilter);

applyStatic();
try {
  const response = await fetch("/api/openapi.json", { headers: { accept: "application/json" } });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  spec = await response.json();
  render();
} catch (error) {
  document.getElementById("content").replaceChildren(el("p", { class: "error" }, t("load_failed", { error: error.message })));
}
