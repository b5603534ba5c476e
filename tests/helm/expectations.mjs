// What the rendered chart must say, per value set of tests/helm/values/
// (the case "default" is the chart's own values). Each function returns the
// list of broken promises (empty: fine).

const byKind = (objs, kind) => objs.filter((o) => o.kind === kind);
const named = (objs, kind, suffix) => objs.find((o) => o.kind === kind && o.metadata.name.endsWith(suffix));
const container = (d) => d.spec.template.spec.containers[0];
const envOf = (d) => Object.fromEntries((container(d).env ?? []).map((e) => [e.name, e]));
const component = (o) => o.metadata.labels?.["app.kubernetes.io/component"];

function check(failures, ok, message) {
  if (!ok) failures.push(message);
}

// Every value set: the security, probe, shutdown and NATS promises of the chart.
export function common(objs) {
  const f = [];
  const deployments = byKind(objs, "Deployment");
  check(f, deployments.length > 0, "no Deployment rendered");
  for (const d of deployments) {
    const id = `Deployment ${d.metadata.name}`;
    const pod = d.spec.template.spec;
    const c = container(d);
    const env = envOf(d);
    check(f, pod.securityContext?.runAsNonRoot === true, `${id}: pod not runAsNonRoot`);
    check(f, c.securityContext?.readOnlyRootFilesystem === true, `${id}: root filesystem not read-only`);
    check(f, c.securityContext?.allowPrivilegeEscalation === false, `${id}: privilege escalation allowed`);
    check(f, c.securityContext?.capabilities?.drop?.includes("ALL"), `${id}: capabilities not dropped`);
    check(f, pod.automountServiceAccountToken === false, `${id}: service account token mounted`);
    check(f, c.livenessProbe?.httpGet?.path === "/healthz", `${id}: liveness probe not on /healthz`);
    check(f, c.readinessProbe?.httpGet?.path === "/readyz", `${id}: readiness probe not on /readyz`);
    check(f, c.startupProbe?.httpGet?.path === "/healthz", `${id}: startup probe not on /healthz`);
    const preStop = Number(c.lifecycle?.preStop?.exec?.command?.[1] ?? 0);
    check(f, pod.terminationGracePeriodSeconds >= preStop + 20,
          `${id}: terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} < preStop ${preStop} + 20 s of graceful stop`);
    check(f, (pod.topologySpreadConstraints ?? []).length > 0, `${id}: no topology spread`);
    check(f, env.NATS_URL?.value, `${id}: no NATS_URL`);
    check(f, env.HTTP_HOST?.value === "0.0.0.0", `${id}: HTTP_HOST is not 0.0.0.0 (unreachable in a pod)`);
    check(f, String(env.HTTP_PORT?.value) === String(c.ports?.[0]?.containerPort), `${id}: HTTP_PORT != containerPort`);
    check(f, env.INSTANCE_ID?.valueFrom?.fieldRef?.fieldPath === "metadata.name", `${id}: INSTANCE_ID not the pod name`);
    for (const secret of ["NATS_USER", "NATS_PASSWORD", "NATS_TOKEN"]) {
      check(f, !env[secret] || (env[secret].valueFrom?.secretKeyRef && env[secret].value === undefined),
            `${id}: ${secret} not taken from a Secret`);
    }
    const mounts = new Set((c.volumeMounts ?? []).map((m) => m.name));
    for (const v of pod.volumes ?? []) check(f, mounts.has(v.name), `${id}: volume ${v.name} never mounted`);
    for (const m of c.volumeMounts ?? []) {
      check(f, (pod.volumes ?? []).some((v) => v.name === m.name), `${id}: mount ${m.name} has no volume`);
    }
    const selector = d.spec.selector.matchLabels;
    for (const [k, v] of Object.entries(selector)) {
      check(f, d.spec.template.metadata.labels[k] === v, `${id}: pod labels do not match the selector (${k})`);
    }
    const pdb = byKind(objs, "PodDisruptionBudget").find((p) => component(p) === component(d));
    check(f, pdb && JSON.stringify(pdb.spec.selector.matchLabels) === JSON.stringify(selector),
          `${id}: no PodDisruptionBudget selecting its pods`);
  }
  for (const s of byKind(objs, "Service")) {
    const d = deployments.find((x) => component(x) === component(s));
    check(f, d && Object.entries(s.spec.selector).every(([k, v]) => d.spec.template.metadata.labels[k] === v),
          `Service ${s.metadata.name}: selects no Deployment's pods`);
  }
  const tests = byKind(objs, "Pod").filter((p) => p.metadata.annotations?.["helm.sh/hook"] === "test");
  check(f, tests.length === 1, `expected one helm test pod, got ${tests.length}`);
  for (const t of tests) {
    const args = t.spec.containers[0].args ?? [];
    const url = args[args.indexOf("--order-url") + 1] ?? "";
    const host = url.replace(/^http:\/\//, "").split(":")[0];
    const svc = byKind(objs, "Service").find((s) => s.metadata.name === host);
    check(f, args.includes("demo") && svc, `helm test pod does not run the demo driver against a rendered Service (${url})`);
    if (svc) check(f, url.endsWith(`:${svc.spec.ports[0].port}`), `helm test pod uses the wrong port (${url})`);
  }
  return f;
}

function replicasOf(objs, name) {
  const d = named(objs, "Deployment", `-${name}`);
  return d ? d.spec.replicas : "missing";
}

export const expectations = {
  default(objs) {
    const f = [];
    for (const [name, n] of [["order", 2], ["inventory", 2], ["payment", 2], ["notification", 1]]) {
      check(f, replicasOf(objs, name) === n, `${name}: replicas ${replicasOf(objs, name)}, expected ${n}`);
      const d = named(objs, "Deployment", `-${name}`);
      if (d) {
        check(f, envOf(d).SERVICE_NAME?.value === name, `${name}: SERVICE_NAME is not ${name}`);
        check(f, envOf(d).ORDER_FLOW_TRANSPORT?.value === "nats", `${name}: not on the NATS transport`);
        check(f, envOf(d).NATS_URL?.value === "nats://nats:4222", `${name}: NATS_URL is not the default`);
        check(f, container(d).image === "order-flow:0.1.0", `${name}: image ${container(d).image}`);
        check(f, d.spec.template.metadata.annotations?.["prometheus.io/scrape"] === "true", `${name}: no scrape annotation`);
      }
    }
    check(f, named(objs, "Service", "-order")?.spec.ports[0].port === 80, "no order Service on port 80");
    for (const kind of ["Secret", "Ingress", "HorizontalPodAutoscaler", "ServiceMonitor"]) {
      check(f, byKind(objs, kind).length === 0, `unexpected ${kind} with the defaults`);
    }
    return f;
  },

  "external-nats"(objs) {
    const f = [];
    check(f, byKind(objs, "Secret").length === 0, "the chart created a Secret although existingSecret is set");
    for (const d of byKind(objs, "Deployment")) {
      const env = envOf(d);
      check(f, env.NATS_URL.value.startsWith("nats://nats-0.nats.messaging.svc:4222,"), `${d.metadata.name}: NATS_URL`);
      for (const [name, key] of [["NATS_USER", "user"], ["NATS_PASSWORD", "password"]]) {
        const ref = env[name]?.valueFrom?.secretKeyRef;
        check(f, ref?.name === "nats-client" && ref?.key === key, `${d.metadata.name}: ${name} not from Secret nats-client/${key}`);
      }
      check(f, container(d).image === "registry.example.com/shop/order-flow:0.1.0", `${d.metadata.name}: image`);
      check(f, container(d).imagePullPolicy === "Always", `${d.metadata.name}: pull policy`);
      check(f, d.spec.template.spec.imagePullSecrets?.[0]?.name === "registry-credentials", `${d.metadata.name}: pull secret`);
    }
    return f;
  },

  tls(objs) {
    const f = [];
    const secrets = byKind(objs, "Secret");
    const tls = secrets.find((s) => s.metadata.name.endsWith("-nats-tls"));
    const auth = secrets.find((s) => s.metadata.name.endsWith("-nats-auth"));
    check(f, tls && ["ca.crt", "tls.crt", "tls.key"].every((k) => tls.data?.[k]), "no TLS Secret with ca.crt, tls.crt, tls.key");
    check(f, auth && Buffer.from(auth.data?.token ?? "", "base64").toString() === "s3cr3t-token", "no auth Secret with the token");
    for (const d of byKind(objs, "Deployment")) {
      const env = envOf(d);
      const id = d.metadata.name;
      check(f, env.NATS_CA?.value === "/etc/catga/nats-tls/ca.crt", `${id}: NATS_CA`);
      check(f, env.NATS_CERT?.value === "/etc/catga/nats-tls/tls.crt", `${id}: NATS_CERT`);
      check(f, env.NATS_KEY?.value === "/etc/catga/nats-tls/tls.key", `${id}: NATS_KEY`);
      check(f, env.NATS_TOKEN?.valueFrom?.secretKeyRef?.name === auth?.metadata.name, `${id}: NATS_TOKEN not from the chart's Secret`);
      const vol = d.spec.template.spec.volumes.find((v) => v.name === "nats-tls");
      check(f, vol?.secret?.secretName === tls?.metadata.name, `${id}: TLS Secret not mounted`);
      check(f, container(d).volumeMounts.some((m) => m.name === "nats-tls" && m.mountPath === "/etc/catga/nats-tls"),
            `${id}: TLS volume not mounted at /etc/catga/nats-tls`);
      check(f, d.spec.template.metadata.annotations?.["checksum/nats"], `${id}: no checksum of the Secrets`);
    }
    return f;
  },

  scaled(objs) {
    const f = [];
    const order = named(objs, "Deployment", "-order");
    check(f, order && order.spec.replicas === undefined, "order: replicas set although the HPA owns them");
    const hpa = byKind(objs, "HorizontalPodAutoscaler");
    check(f, hpa.length === 1, `expected 1 HPA, got ${hpa.length}`);
    if (hpa[0]) {
      check(f, hpa[0].spec.scaleTargetRef.name === order?.metadata.name, "HPA does not target the order Deployment");
      check(f, hpa[0].spec.minReplicas === 5 && hpa[0].spec.maxReplicas === 20, "HPA range is not 5-20");
      check(f, hpa[0].spec.metrics[0].resource.target.averageUtilization === 75, "HPA CPU target is not the default 75");
    }
    for (const name of ["inventory", "payment", "notification"]) {
      check(f, replicasOf(objs, name) === 5, `${name}: replicas ${replicasOf(objs, name)}, expected 5`);
    }
    const payment = named(objs, "Deployment", "-payment");
    const res = payment && container(payment).resources;
    check(f, res?.requests?.cpu === "250m" && res?.requests?.memory === "64Mi" && res?.limits?.memory === "256Mi",
          `payment: resources not merged over the defaults (${JSON.stringify(res)})`);
    check(f, envOf(payment).PAYMENT_LATENCY_MS?.value === "0" && envOf(payment).ORDER_FLOW_TRANSPORT,
          "payment: env not merged over the defaults");
    return f;
  },

  ingress(objs) {
    const f = [];
    const ing = byKind(objs, "Ingress")[0];
    const svc = named(objs, "Service", "-order");
    check(f, ing, "no Ingress");
    if (ing && svc) {
      const rule = ing.spec.rules[0];
      const backend = rule.http.paths[0].backend.service;
      check(f, rule.host === "shop.example.com", "Ingress host");
      check(f, backend.name === svc.metadata.name && backend.port.number === svc.spec.ports[0].port,
            "Ingress does not point at the order Service's port");
      check(f, ing.spec.ingressClassName === "nginx" && ing.spec.tls?.[0]?.secretName === "shop-example-tls", "Ingress class/TLS");
    }
    const sm = byKind(objs, "ServiceMonitor")[0];
    check(f, sm?.metadata.labels?.release === "prometheus", "no ServiceMonitor with the extra label");
    if (sm) {
      const services = byKind(objs, "Service");
      check(f, services.length === 4 && services.every((s) =>
              Object.entries(sm.spec.selector.matchLabels).every(([k, v]) => s.metadata.labels[k] === v)),
            "ServiceMonitor does not select every service's Service");
      check(f, sm.spec.endpoints[0].port === "http" && sm.spec.endpoints[0].path === "/metrics", "ServiceMonitor endpoint");
    }
    const creds = byKind(objs, "Secret").find((s) => s.data?.["nats.creds"]);
    check(f, creds, "no Secret with nats.creds");
    for (const d of byKind(objs, "Deployment")) {
      check(f, envOf(d).NATS_CREDS?.value === "/etc/catga/nats-auth/nats.creds", `${d.metadata.name}: NATS_CREDS`);
      const vol = d.spec.template.spec.volumes.find((v) => v.name === "nats-auth");
      check(f, vol?.secret?.secretName === creds?.metadata.name, `${d.metadata.name}: creds Secret not mounted`);
    }
    return f;
  },

  "own-service"(objs) {
    const f = [];
    check(f, !named(objs, "Deployment", "-notification"), "notification rendered although disabled");
    check(f, !named(objs, "PodDisruptionBudget", "-notification"), "PDB of a disabled service");
    const billing = named(objs, "Deployment", "-billing");
    check(f, billing, "no billing Deployment");
    if (billing) {
      const c = container(billing);
      const env = envOf(billing);
      check(f, billing.spec.replicas === 3, "billing: replicas");
      check(f, c.image === "registry.example.com/shop/billing:1.4.2", `billing: image ${c.image}`);
      check(f, JSON.stringify(c.args) === JSON.stringify(["--queue-group", "billing"]), "billing: args");
      check(f, c.ports[0].containerPort === 9090 && env.HTTP_PORT.value === "9090", "billing: port");
      check(f, env.SERVICE_NAME.value === "billing" && env.BILLING_CURRENCY?.value === "EUR", "billing: env");
      check(f, env.ORDER_FLOW_TRANSPORT?.value === "nats", "billing: default env not kept");
      check(f, billing.spec.template.spec.terminationGracePeriodSeconds === 60, "billing: grace period");
      check(f, JSON.stringify(c.lifecycle.preStop.exec.command) === '["sleep","10"]', "billing: preStop");
      check(f, c.resources?.limits?.memory === "256Mi", "billing: default resources not kept");
    }
    check(f, !named(objs, "Service", "-billing"), "billing: Service rendered although service.enabled is false");
    check(f, byKind(objs, "Deployment").length === 4, "expected order, inventory, payment and billing");
    return f;
  },
};
