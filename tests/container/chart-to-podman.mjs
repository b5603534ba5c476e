// Turns `helm template` output of helm/order-flow into podman commands, so
// tests/container/check-container.sh runs the pods the chart describes rather
// than a retyped copy of them (issue 25). Prints bash declarations:
//   POD_NAME[i] POD_DEPLOY[i] POD_RUN_i=(podman run arguments...)
//   POD_STARTUP[i] POD_LIVENESS[i] POD_READINESS[i]   "<path> <port> <periodSeconds> <failureThreshold>"
//   POD_PRESTOP_i=(command...) POD_GRACE[i] POD_ENV_NAMES[i] (space-separated)
//   TEST_POD_NAME TEST_POD_DEADLINE TEST_POD_RUN=(podman run arguments...)
//   CHART_RUN_AS ("uid:gid"), CHART_PORTS (container ports), CHART_IMAGES (images)
// Anything the translation does not understand (a secretKeyRef, a Secret
// volume, an unknown probe kind, ...) is an error, not silently dropped: the
// test must not pass on a pod spec it did not really run.
//
//   CATGA_K8S_NODE_MODULES=... node chart-to-podman.mjs <rendered.yaml> <network>
// The `yaml` package comes from the tools of scripts/lib/k8s-tools.sh (ES
// modules ignore NODE_PATH: imported from $CATGA_K8S_NODE_MODULES).
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const modules = process.env.CATGA_K8S_NODE_MODULES;
if (!modules) throw new Error("set CATGA_K8S_NODE_MODULES (scripts/lib/k8s-tools.sh)");
const YAML = (await import(pathToFileURL(path.join(modules, "yaml/dist/index.js")).href)).default;

const [file, network] = process.argv.slice(2);
if (!file || !network) {
  console.error("usage: node chart-to-podman.mjs <rendered.yaml> <network>");
  process.exit(2);
}
const docs = YAML.parseAllDocuments(fs.readFileSync(file, "utf8"))
  .map((d) => d.toJS())
  .filter((d) => d && d.kind);

function die(msg) {
  console.error(`chart-to-podman: ${msg}`);
  process.exit(1);
}
const q = (s) => `'${String(s).replaceAll("'", `'\\''`)}'`;
const arr = (a) => `(${a.map(q).join(" ")})`;

const services = docs.filter((d) => d.kind === "Service");
const deployments = docs.filter((d) => d.kind === "Deployment");
if (deployments.length === 0) die("no Deployment in the rendered chart");

const matches = (selector, labels) =>
  Object.entries(selector || {}).every(([k, v]) => labels[k] === v);

// The flags a pod's and container's securityContext, resources and volumes
// ask of podman; the same for the Deployments and the test pod.
function podmanFlags(podSpec, container, podName, labels, runAs) {
  const flags = ["--name", podName, "--hostname", podName, "--network", network];
  for (const svc of services) {
    if (labels && matches(svc.spec.selector, labels)) flags.push("--network-alias", svc.metadata.name);
  }
  const psc = podSpec.securityContext || {};
  const csc = container.securityContext || {};
  const uid = csc.runAsUser ?? psc.runAsUser;
  const gid = csc.runAsGroup ?? psc.runAsGroup;
  if (uid !== undefined) flags.push("--user", gid !== undefined ? `${uid}:${gid}` : `${uid}`);
  if (uid !== undefined) runAs.add(gid !== undefined ? `${uid}:${gid}` : `${uid}`);
  if (csc.readOnlyRootFilesystem) flags.push("--read-only");
  if (csc.allowPrivilegeEscalation === false) flags.push("--security-opt", "no-new-privileges");
  if (csc.privileged) die(`${podName}: privileged containers are not run here`);
  for (const cap of csc.capabilities?.drop || []) flags.push("--cap-drop", cap);
  for (const cap of csc.capabilities?.add || []) flags.push("--cap-add", cap);
  const seccomp = csc.seccompProfile?.type ?? psc.seccompProfile?.type;
  if (seccomp && seccomp !== "RuntimeDefault") die(`${podName}: seccomp profile ${seccomp} not supported`);
  if (container.resources?.limits?.memory) {
    const m = String(container.resources.limits.memory).match(/^(\d+)(Mi|Gi)$/);
    if (!m) die(`${podName}: memory limit ${container.resources.limits.memory} not understood`);
    flags.push("--memory", `${m[1]}${m[2] === "Mi" ? "m" : "g"}`);
  }
  const volumes = Object.fromEntries((podSpec.volumes || []).map((v) => [v.name, v]));
  for (const mount of container.volumeMounts || []) {
    const v = volumes[mount.name];
    if (!v) die(`${podName}: volumeMount ${mount.name} has no volume`);
    if (!v.emptyDir) die(`${podName}: volume ${mount.name} is not an emptyDir (not supported here)`);
    const size = v.emptyDir.sizeLimit ? `,size=${String(v.emptyDir.sizeLimit).replace(/Mi$/, "m")}` : "";
    flags.push("--tmpfs", `${mount.mountPath}:rw,mode=1777${size}`);
  }
  const envNames = [];
  for (const e of container.env || []) {
    envNames.push(e.name);
    if ("value" in e) {
      flags.push("--env", `${e.name}=${e.value ?? ""}`);
    } else if (e.valueFrom?.fieldRef?.fieldPath === "metadata.name") {
      flags.push("--env", `${e.name}=${podName}`);
    } else {
      die(`${podName}: env ${e.name} comes from ${JSON.stringify(e.valueFrom)} (not supported here)`);
    }
  }
  if ((container.envFrom || []).length) die(`${podName}: envFrom not supported here`);
  if (container.command) flags.push("--entrypoint", JSON.stringify(container.command));
  return { flags, envNames };
}

function probe(p, container, what) {
  if (!p) die(`${container.name}: no ${what} probe`);
  if (!p.httpGet) die(`${container.name}: ${what} probe is not httpGet`);
  let port = p.httpGet.port;
  if (typeof port === "string") {
    const named = (container.ports || []).find((cp) => cp.name === port);
    if (!named) die(`${container.name}: ${what} probe names port ${port}, which the container does not declare`);
    port = named.containerPort;
  }
  return `${p.httpGet.path} ${port} ${p.periodSeconds ?? 10} ${p.failureThreshold ?? 3}`;
}

const out = [];
const runAs = new Set();
const ports = new Set();
const images = new Set();
let i = 0;
for (const d of deployments) {
  const podSpec = d.spec.template.spec;
  if (podSpec.containers.length !== 1) die(`${d.metadata.name}: one container per pod expected`);
  if (podSpec.initContainers) die(`${d.metadata.name}: initContainers not supported`);
  const c = podSpec.containers[0];
  images.add(c.image);
  for (const cp of c.ports || []) ports.add(cp.containerPort);
  const labels = d.spec.template.metadata.labels;
  for (let r = 1; r <= (d.spec.replicas ?? 1); r++, i++) {
    const name = `${d.metadata.name}-${r}`;
    const { flags, envNames } = podmanFlags(podSpec, c, name, labels, runAs);
    out.push(`POD_NAME[${i}]=${q(name)}`, `POD_DEPLOY[${i}]=${q(d.metadata.name)}`);
    out.push(`POD_RUN_${i}=${arr([...flags, c.image, ...(c.args || [])])}`);
    out.push(`POD_STARTUP[${i}]=${q(probe(c.startupProbe, c, "startup"))}`);
    out.push(`POD_LIVENESS[${i}]=${q(probe(c.livenessProbe, c, "liveness"))}`);
    out.push(`POD_READINESS[${i}]=${q(probe(c.readinessProbe, c, "readiness"))}`);
    const preStop = c.lifecycle?.preStop;
    if (preStop && !preStop.exec) die(`${c.name}: preStop is not exec`);
    out.push(`POD_PRESTOP_${i}=${arr(preStop ? preStop.exec.command : [])}`);
    out.push(`POD_GRACE[${i}]=${q(podSpec.terminationGracePeriodSeconds ?? 30)}`);
    out.push(`POD_ENV_NAMES[${i}]=${q(envNames.join(" "))}`);
  }
}
out.push(`POD_COUNT=${i}`);

// The `helm test` pod. Its URL names a Service (<name>:<port>); on podman the
// Service name is a network alias of the pods it selects, and the port is
// replaced by the Service's targetPort resolved against those pods' ports
// (what kube-proxy does), so the test pod reaches the same containers.
const tests = docs.filter((d) => d.kind === "Pod" && d.metadata.annotations?.["helm.sh/hook"] === "test");
if (tests.length !== 1) die(`expected one helm test pod, found ${tests.length}`);
const t = tests[0];
const tc = t.spec.containers[0];
images.add(tc.image);
const args = (tc.args || []).map((a) =>
  a.replace(/^(https?:\/\/)([^:/]+):(\d+)/, (all, scheme, host, port) => {
    const svc = services.find((s) => s.metadata.name === host);
    if (!svc) die(`test pod: ${host} is not a Service of the chart`);
    const sp = svc.spec.ports.find((p) => String(p.port) === port);
    if (!sp) die(`test pod: Service ${host} has no port ${port}`);
    const pod = deployments.find((d) => matches(svc.spec.selector, d.spec.template.metadata.labels));
    if (!pod) die(`test pod: Service ${host} selects no Deployment`);
    let target = sp.targetPort ?? sp.port;
    if (typeof target === "string") {
      const named = pod.spec.template.spec.containers[0].ports?.find((p) => p.name === target);
      if (!named) die(`Service ${host}: targetPort ${target} is no port of ${pod.metadata.name}`);
      target = named.containerPort;
    }
    return `${scheme}${host}:${target}`;
  }),
);
const { flags: testFlags } = podmanFlags(t.spec, tc, t.metadata.name, null, runAs);
out.push(`TEST_POD_NAME=${q(t.metadata.name)}`);
out.push(`TEST_POD_DEADLINE=${q(t.spec.activeDeadlineSeconds ?? 300)}`);
out.push(`TEST_POD_RUN=${arr([...testFlags, tc.image, ...args])}`);
out.push(`CHART_RUN_AS=${q([...runAs].join(" "))}`);
out.push(`CHART_PORTS=${q([...ports].join(" "))}`);
out.push(`CHART_IMAGES=${q([...images].join(" "))}`);
console.log(out.join("\n"));
