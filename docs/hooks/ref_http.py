"""The HTTP reference, rendered from the OpenAPI document of the FastAPI application.

``create_app`` builds the real service over a throw-away data directory (no model is loaded, nothing is
served) and FastAPI writes its OpenAPI document; this module turns that into Markdown: one section per
route with its parameters, body, responses and the scope it needs, then every schema as a table. The
site shows no Swagger UI (it would come from a CDN); ``openapi.json`` is published beside the page for
tools, and a running service still serves ``/docs``.
"""

from __future__ import annotations

import json
import re
from typing import Any

_METHOD_ORDER = ["get", "post", "put", "patch", "delete"]
_TAG_TITLES = {"query": "Search, recommend, ask", "data": "Collections and records", "ingest": "Ingest jobs",
               "openai": "OpenAI-compatible", "ops": "Operations"}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _schema_type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = _ref_name(schema["$ref"])
        return f"[{name}](#schema-{_slug(name)})"
    if "anyOf" in schema or "oneOf" in schema:
        options = [s for s in schema.get("anyOf", schema.get("oneOf", [])) if s.get("type") != "null"]
        nullable = len(options) < len(schema.get("anyOf", schema.get("oneOf", [])))
        text = " or ".join(_schema_type(s) for s in options)
        return f"{text} or null" if nullable else text
    if "enum" in schema:
        return " \\| ".join(f'`"{v}"`' if isinstance(v, str) else f"`{v}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    kind = schema.get("type")
    if kind == "array":
        return f"array of {_schema_type(schema.get('items', {}))}"
    if kind == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            return f"object of {_schema_type(extra)}"
        return "object"
    return str(kind or "any")


def _bounds(schema: dict[str, Any]) -> str:
    words = []
    for s in [schema, *schema.get("anyOf", [])]:
        for key, text in (("minimum", "≥ {}"), ("maximum", "≤ {}"), ("exclusiveMinimum", "> {}"),
                          ("exclusiveMaximum", "< {}"), ("minLength", "length ≥ {}"), ("maxLength", "length ≤ {}"),
                          ("minItems", "≥ {} items"), ("maxItems", "≤ {} items"), ("pattern", "matches `{}`")):
            if key in s:
                value = s[key]
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                words.append(text.format(value))
    return ", ".join(words)


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _default(schema: dict[str, Any]) -> str:
    if "default" not in schema:
        return ""
    return f"`{json.dumps(schema['default'])}`"


def _op_anchor(op: dict[str, Any], method: str, path: str) -> str:
    return "op-" + _slug(op.get("operationId") or f"{method} {path}")


def _body_schema(content: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    for media, body in content.items():
        if "schema" in body:
            return media, body["schema"]
    return None


def _operation(path: str, method: str, op: dict[str, Any], out: list[str]) -> None:
    title = op.get("summary") or f"{method.upper()} {path}"
    out.extend([f"### {title} {{ #{_op_anchor(op, method, path)} }}", "", f"`{method.upper()} {path}`", ""])
    if op.get("description"):
        out.extend([op["description"].strip(), ""])
    params = op.get("parameters", [])
    if params:
        out.extend(["| parameter | in | type | required | description |", "|---|---|---|---|---|"])
        for p in params:
            schema = p.get("schema", {})
            described = p.get("description") or schema.get("description") or ""
            bounds = _bounds(schema)
            out.append(f"| `{p['name']}` | {p['in']} | {_schema_type(schema)} | {'yes' if p.get('required') else ''} "
                       f"| {_cell(described)}{'; ' + bounds if bounds and described else bounds} |")
        out.append("")
    body = op.get("requestBody")
    if body:
        found = _body_schema(body.get("content", {}))
        if found:
            media, schema = found
            out.extend([f"Request body (`{media}`): {_schema_type(schema)}", ""])
    responses = op.get("responses", {})
    if responses:
        out.extend(["| status | meaning | body |", "|---|---|---|"])
        for status, response in responses.items():
            found = _body_schema(response.get("content", {}))
            kind = f"{_schema_type(found[1])} (`{found[0]}`)" if found and found[1] else ""
            out.append(f"| {status} | {_cell(response.get('description', ''))} | {kind} |")
        out.append("")


def _schema_section(name: str, schema: dict[str, Any], out: list[str]) -> None:
    out.extend([f"### {name} {{ #schema-{_slug(name)} }}", ""])
    if schema.get("description"):
        out.extend([schema["description"].strip(), ""])
    props = schema.get("properties", {})
    if not props:
        out.extend([f"Type: {_schema_type(schema)}", ""])
        return
    required = set(schema.get("required", []))
    out.extend(["| field | type | required | default | description |", "|---|---|---|---|---|"])
    for field, sub in props.items():
        bounds = _bounds(sub)
        described = sub.get("description", "")
        detail = f"{_cell(described)}{'; ' if described and bounds else ''}{bounds}"
        out.append(f"| `{field}` | {_schema_type(sub)} | {'yes' if field in required else ''} | {_default(sub)} "
                   f"| {detail} |")
    if schema.get("additionalProperties") is False:
        out.extend(["", "Unknown fields are refused (422)."])
    out.append("")


def render(spec: dict[str, Any]) -> str:
    info = spec.get("info", {})
    out = [
        "# HTTP reference",
        "",
        f"Generated at build time from the OpenAPI {spec.get('openapi', '')} document of the service "
        f"(`vectorseam.service.app.create_app`, {info.get('title', '')} {info.get('version', '')}). "
        "The document itself: [openapi.json](openapi.json); a running `vectorseam serve` also serves it at "
        "`/openapi.json` and an interactive explorer at `/docs`. The [HTTP service guide](../guides/service.md) "
        "covers keys, limits and deployment.",
        "",
        "Every error body has the shape of [ErrorResponse](#schema-errorresponse) and carries the request id, "
        "also sent as the `X-Request-ID` header. Keys go in `Authorization: Bearer KEY` or `X-API-Key: KEY`.",
        "",
    ]
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, item in spec.get("paths", {}).items():
        for method in _METHOD_ORDER:
            if method in item:
                op = item[method]
                tag = (op.get("tags") or ["other"])[0]
                by_tag.setdefault(tag, []).append((path, method, op))
    out.extend(["## Routes", "", "| method | path | what it does |", "|---|---|---|"])
    for ops in by_tag.values():
        for path, method, op in ops:
            title = op.get("summary") or f"{method.upper()} {path}"
            out.append(f"| {method.upper()} | [`{path}`](#{_op_anchor(op, method, path)}) | {_cell(title)} |")
    out.append("")
    for tag, ops in by_tag.items():
        out.extend([f"## {_TAG_TITLES.get(tag, tag.capitalize())}", ""])
        for path, method, op in ops:
            _operation(path, method, op, out)
    schemas = spec.get("components", {}).get("schemas", {})
    if schemas:
        out.extend(["## Schemas", ""])
        for name, schema in schemas.items():
            _schema_section(name, schema, out)
    return "\n".join(out) + "\n"
