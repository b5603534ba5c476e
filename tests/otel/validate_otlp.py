#!/usr/bin/env python3
"""Checks OTLP/JSON trace export bodies against the official protocol.

    validate_otlp.py <body.json>...

Each file must be an ExportTraceServiceRequest in OTLP/JSON: the OTLP spec
maps the protobuf messages to JSON with two differences from protobuf's own
JSON mapping, trace and span ids as hex (not base64) and enums as integers.
The ids are checked as hex of the right length and turned into base64, then
google.protobuf.json_format.Parse (no unknown fields allowed) checks
everything else against the generated classes of Debian's
python3-opentelemetry-proto (the opentelemetry-proto .proto files).

Exit 0: all valid; 1: a body is invalid; 77: the modules are missing (the
CTest test is then skipped, loudly).
"""
import base64
import json
import re
import sys

try:
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
except ImportError as e:  # pragma: no cover
    print(f"validate_otlp: SKIPPED: {e} (needs python3-protobuf and python3-opentelemetry-proto)")
    sys.exit(77)

HEX = re.compile(r"^[0-9a-f]+$")


def fix_ids(span, where):
    for key, size in (("traceId", 32), ("spanId", 16), ("parentSpanId", 16)):
        if key not in span:
            if key != "parentSpanId":
                raise ValueError(f"{where}: no {key}")
            continue
        v = span[key]
        if not isinstance(v, str) or len(v) != size or not HEX.match(v):
            raise ValueError(f"{where}: {key} {v!r} is not {size} lowercase hex digits")
        if set(v) == {"0"}:
            raise ValueError(f"{where}: {key} is all zeros")
        span[key] = base64.b64encode(bytes.fromhex(v)).decode()
    for link in span.get("links", []):
        fix_ids(link, where + " link")


def validate(path):
    with open(path, encoding="utf-8") as f:
        body = json.load(f)
    count = 0
    for rs in body.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for i, span in enumerate(ss.get("spans", [])):
                fix_ids(span, f"{path}: span {i} ({span.get('name')})")
                count += 1
    msg = json_format.Parse(json.dumps(body), trace_service_pb2.ExportTraceServiceRequest(),
                            ignore_unknown_fields=False)
    parsed = sum(len(ss.spans) for rs in msg.resource_spans for ss in rs.scope_spans)
    if parsed != count or count == 0:
        raise ValueError(f"{path}: {parsed} spans parsed, {count} in the body")
    names = {kv.key for rs in msg.resource_spans for kv in rs.resource.attributes}
    if "service.name" not in names:
        raise ValueError(f"{path}: the resource has no service.name")
    for rs in msg.resource_spans:
        for ss in rs.scope_spans:
            for s in ss.spans:
                if s.end_time_unix_nano < s.start_time_unix_nano or s.start_time_unix_nano == 0:
                    raise ValueError(f"{path}: span {s.name}: bad times")
                if s.kind == 0:
                    raise ValueError(f"{path}: span {s.name}: kind unspecified")
    return count


def main(paths):
    if not paths:
        print(__doc__)
        return 2
    for p in paths:
        try:
            n = validate(p)
        except (ValueError, json_format.ParseError, json.JSONDecodeError) as e:
            print(f"validate_otlp: INVALID: {e}")
            return 1
        print(f"validate_otlp: {p}: {n} spans, valid OTLP/JSON")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
