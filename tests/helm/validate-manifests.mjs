// Validates rendered Helm output offline, without a cluster:
//   node validate-manifests.mjs <case> <rendered.yaml>
// 1. every document parses and has apiVersion, kind and metadata.name;
// 2. every object passes the Kubernetes API schema of its kind
//    (kubernetes-models; ServiceMonitor through @kubernetes-models/prometheus-operator);
//    a kind without a model is an error, not a silent pass;
// 3. no field is unknown to its kind (the schemas alone accept typos such as
//    `readinesProbe`; the API server would drop or reject them), checked
//    against the models' type declarations;
// 4. what the chart promises holds for this value set (expectations.mjs;
//    case "schema-only" skips this step).
// NODE_PATH is not used by ES modules: the modules are imported from the
// directory named by $CATGA_K8S_NODE_MODULES.
import { readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { expectations, common } from "./expectations.mjs";

const modules = process.env.CATGA_K8S_NODE_MODULES;
if (!modules) throw new Error("set CATGA_K8S_NODE_MODULES to the node_modules of tests/helm/package.json");
const load = (spec) => import(pathToFileURL(path.join(modules, spec)).href);

const [caseName, file] = process.argv.slice(2);
if (!caseName || !file) {
  console.error("usage: node validate-manifests.mjs <case> <rendered.yaml>");
  process.exit(2);
}
const YAML = await load("yaml/dist/index.js");

// apiVersion → [package, folder]: core objects live in kubernetes-models/v1.
function modelPath(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  if (group === "monitoring.coreos.com") return `@kubernetes-models/prometheus-operator/${group}/${version}/${kind}.js`;
  return group ? `kubernetes-models/${group}/${version}/${kind}.js` : `kubernetes-models/${version}/${kind}.js`;
}

// --- unknown fields, from the models' .d.ts declarations ------------------------
// Each interface lists its properties as `"name"?: Type;`; types name other
// interfaces imported from sibling files. Unknown types (IntOrString, Quantity,
// maps) are accepted as they are.
const interfaces = new Map();  // "<file>#<Interface>" → {props: Map(name → type), file}
function parseDts(file) {
  const text = readFileSync(file, "utf8");
  const imports = new Map();
  for (const m of text.matchAll(/import\s*\{([^}]*)\}\s*from\s*"([^"]+)"/g)) {
    for (const name of m[1].split(",").map((s) => s.trim()).filter(Boolean)) {
      imports.set(name, m[2]);
    }
  }
  const result = new Map();
  for (const m of text.matchAll(/export interface (\w+)(?: extends [\w, ]+)? \{([\s\S]*?)\n\}/g)) {
    const props = new Map();
    // Properties at the interface's own level: four spaces of indent.
    for (const p of m[2].matchAll(/^ {4}"([^"]+)"\??: ([^;]+);/gm)) props.set(p[1], p[2].trim());
    result.set(m[1], { props, imports, file });
  }
  // `export type { IDeploymentSpec as IIoK8sApiAppsV1DeploymentSpec }`: the name importers use.
  for (const m of text.matchAll(/export type \{([^}]*)\}/g)) {
    for (const pair of m[1].split(",")) {
      const [local, exported] = pair.split(" as ").map((s) => s.trim());
      if (exported && result.has(local)) result.set(exported, result.get(local));
    }
  }
  return result;
}
const dtsCache = new Map();
function resolveImport(fromFile, spec) {
  let target;
  if (spec.startsWith(".")) target = path.resolve(path.dirname(fromFile), spec);
  else target = path.join(modules, spec);
  target = target.replace(/\.js$/, "");
  return `${target}.d.ts`;
}
function lookup(file, name) {
  if (!dtsCache.has(file)) dtsCache.set(file, parseDts(file));
  const found = dtsCache.get(file).get(name);
  if (found) return found;
  // A re-export alias: `export type { IX as IIoK8s... }`; follow the import.
  for (const [, iface] of dtsCache.get(file)) {
    const spec = iface.imports.get(name);
    if (spec) return lookup(resolveImport(file, spec), name);
  }
  return null;
}
function checkFields(value, type, iface, at, errors) {
  if (value === null || value === undefined) return;
  const arr = /^Array<(\w+)>$/.exec(type);
  if (arr) {
    if (Array.isArray(value)) value.forEach((v, i) => checkFields(v, arr[1], iface, `${at}[${i}]`, errors));
    return;
  }
  if (!/^I\w+$/.test(type) || typeof value !== "object" || Array.isArray(value)) return;
  const spec = iface.imports.get(type);
  const target = spec ? lookup(resolveImport(iface.file, spec), type) : lookup(iface.file, type);
  if (!target || target.props.size === 0) return;  // opaque (IntOrString, Quantity, RawExtension)
  for (const [k, v] of Object.entries(value)) {
    if (!target.props.has(k)) {
      errors.push(`${at}.${k}: unknown field (not in ${type.replace(/^IIoK8s/, "")})`);
      continue;
    }
    checkFields(v, target.props.get(k), target, `${at}.${k}`, errors);
  }
}
function unknownFields(obj, modelFile, kind) {
  const dts = modelFile.replace(/\.js$/, ".d.ts");
  const top = lookup(dts, `I${kind}`);
  if (!top) return [`${kind}: no type declaration to check fields against`];
  const errors = [];
  for (const [k, v] of Object.entries(obj)) {
    if (!top.props.has(k)) errors.push(`.${k}: unknown field`);
    else checkFields(v, top.props.get(k), top, `.${k}`, errors);
  }
  return errors;
}

// --- main -------------------------------------------------------------------------
const docs = YAML.parseAllDocuments(readFileSync(file, "utf8"));
const objects = [];
const failures = [];
docs.forEach((doc, i) => {
  if (doc.errors.length) {
    failures.push(`document ${i}: YAML error: ${doc.errors[0].message}`);
    return;
  }
  const obj = doc.toJS();
  if (obj === null || obj === undefined) return;  // an empty document between ---
  objects.push(obj);
});

const counts = new Map();
for (const obj of objects) {
  const id = `${obj.kind ?? "?"}/${obj.metadata?.name ?? "?"}`;
  if (!obj.apiVersion || !obj.kind || !obj.metadata?.name) {
    failures.push(`${id}: apiVersion, kind and metadata.name are required`);
    continue;
  }
  const rel = modelPath(obj.apiVersion, obj.kind);
  let Model;
  try {
    Model = (await load(rel))[obj.kind];
  } catch {
    failures.push(`${id}: no schema for ${obj.apiVersion} ${obj.kind} (not a Kubernetes API kind this check knows)`);
    continue;
  }
  try {
    new Model(obj).validate();
  } catch (e) {
    const details = (e.errors ?? []).map((x) => `${x.instancePath} ${x.message}`).join("; ");
    failures.push(`${id}: ${e.message}${details ? ` (${details})` : ""}`);
  }
  for (const u of unknownFields(obj, path.join(modules, rel), obj.kind)) failures.push(`${id}: ${u}`);
  counts.set(obj.kind, (counts.get(obj.kind) ?? 0) + 1);
}

// "schema-only": steps 1-3 (the validator's own test, other charts).
const expect = expectations[caseName];
if (caseName === "schema-only") {
  // nothing to expect
} else if (!expect) failures.push(`no expectations for case '${caseName}' in expectations.mjs`);
else {
  for (const f of common(objects)) failures.push(`expectation: ${f}`);
  for (const f of expect(objects)) failures.push(`expectation: ${f}`);
}

const summary = [...counts].map(([k, n]) => `${k} ${n}`).join(", ");
if (failures.length) {
  console.error(`FAIL ${caseName}: ${objects.length} objects (${summary})`);
  for (const f of failures) console.error(`  ${f}`);
  process.exit(1);
}
console.log(`ok ${caseName}: ${objects.length} objects valid against the Kubernetes schemas, no unknown fields (${summary})`);
