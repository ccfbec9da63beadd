"""An in-memory Weaviate that the real ``weaviate-client`` v4 talks to over HTTP and gRPC on 127.0.0.1.

Why it exists: no Weaviate server can run here, and the adapter's query and write paths only mean
something when they go through the client's real wire encoding. So this fake implements the REST
endpoints the v4 client calls (``/v1/meta``, ``/v1/.well-known/*``, ``/v1/schema`` and its
``properties``/``tenants`` sub-resources) and the ``weaviate.v1.Weaviate`` gRPC service (``Search``,
``BatchObjects``, ``BatchDelete``, ``TenantsGet``, ``Aggregate``) plus the gRPC health check, using the
protobuf modules and servicer stubs shipped with the client. It implements only what the adapter
uses, but answers the way Weaviate 1.32 does:

* the schema it returns is the posted class with Weaviate's defaults filled in (inverted index,
  sharding, replication, multi-tenancy, HNSW parameters of every named vector, property flags), so
  the client's strict config parser accepts it;
* objects are validated against the schema (unknown property, wrong type -> per-object batch error,
  as Weaviate does with auto-schema off); an unnamed vector sent to a collection with one named vector
  is stored under that name (weaviate/weaviate#6045);
* search is an exact brute force over float32 vectors; distances are Weaviate's: cosine ``1 - cos``,
  dot ``-dot``, l2-squared ``|a - b|^2``; results sorted by distance, listings and the ``after`` cursor
  by uuid;
* the gRPC ``Filters`` tree is evaluated (And/Or/Not, (Not)Equal, ranges, ContainsAny/All/None,
  IsNull) on typed values; IsNull needs ``indexNullState`` and filtering needs ``indexFilterable``
  like on the server; text properties must use ``field`` tokenization (the only one the fake models);
* ``date``/``date[]`` values must be RFC 3339 text (Go's ``time.RFC3339Nano``: ``T``, seconds, up to
  nine fractional digits, ``Z`` or ``+hh:mm``), else the object is refused; date filters (the client
  sends the bound as text) compare ``UnixNano()`` values, int64 nanoseconds since 1970 that wrap
  around outside 1677-2262 exactly as Go's arithmetic does, since that is what the server indexes;
* multi-tenant collections demand an existing tenant on every data request and keep tenants apart.

Fault injection for tests: :meth:`FakeWeaviate.fail_http` (status codes for the next matching REST
requests), :meth:`FakeWeaviate.fail_grpc` (status codes for the next calls of one RPC) and
``reject_objects`` (uuid -> per-object batch error message). Every gRPC call is logged in ``calls``.
"""

from __future__ import annotations

import copy
import datetime
import json
import operator
import re
import struct
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from typing import Any

import grpc
import numpy as np
from google.protobuf.struct_pb2 import Struct
from weaviate.proto.v1 import (
    aggregate_pb2,
    base_pb2,
    batch_delete_pb2,
    batch_pb2,
    health_weaviate_pb2,
    properties_pb2,
    search_get_pb2,
    tenants_pb2,
    weaviate_pb2_grpc,
)

SERVER_VERSION = "1.32.5"
QUERY_MAXIMUM_RESULTS = 10_000
F = base_pb2.Filters

_HNSW_DEFAULTS: dict[str, Any] = {
    "skip": False, "cleanupIntervalSeconds": 300, "maxConnections": 32, "efConstruction": 128, "ef": -1,
    "dynamicEfMin": 100, "dynamicEfMax": 500, "dynamicEfFactor": 8, "vectorCacheMaxObjects": 1000000000000,
    "flatSearchCutoff": 40000, "distance": "cosine", "filterStrategy": "sweeping",
    "pq": {"enabled": False, "bitCompression": False, "segments": 0, "centroids": 256, "trainingLimit": 100000,
           "encoder": {"type": "kmeans", "distribution": "log-normal"}},
    "bq": {"enabled": False}, "sq": {"enabled": False, "trainingLimit": 100000, "rescoreLimit": 20},
    "rq": {"enabled": False, "bits": 8, "rescoreLimit": 20},
    "multivector": {"enabled": False, "muvera": {"enabled": False, "ksim": 4, "dprojections": 16,
                                                 "repetitions": 10}, "aggregation": "maxSim"},
}
_INVERTED_DEFAULTS: dict[str, Any] = {
    "bm25": {"b": 0.75, "k1": 1.2}, "cleanupIntervalSeconds": 60,
    "stopwords": {"additions": None, "preset": "en", "removals": None},
    "indexNullState": False, "indexPropertyLength": False, "indexTimestamps": False, "usingBlockMaxWAND": True,
}
_SCALAR_TYPES = {"text", "number", "int", "boolean", "uuid", "date"}


class FakeError(Exception):
    """A request Weaviate would refuse; carries the gRPC status and Weaviate's message."""

    def __init__(self, message: str, code: grpc.StatusCode = grpc.StatusCode.UNKNOWN) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class StoredObject:
    uuid: str
    properties: dict[str, Any]
    vectors: dict[str, np.ndarray[Any, np.dtype[np.float32]]]
    created_ms: int


@dataclass
class StoredClass:
    config: dict[str, Any]
    # tenant ("" when multi-tenancy is off) -> uuid -> object
    shards: dict[str, dict[str, StoredObject]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.config["class"])

    @property
    def multi_tenant(self) -> bool:
        return bool(self.config["multiTenancyConfig"]["enabled"])

    def prop(self, name: str) -> dict[str, Any] | None:
        return next((p for p in self.config["properties"] if p["name"] == name), None)


@dataclass
class GrpcCall:
    method: str
    collection: str
    tenant: str
    kind: str = ""  # for Search: near_vector, near_object or "" (a listing)


def _merge_defaults(value: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(defaults)
    for key, v in value.items():
        if isinstance(v, dict) and isinstance(out.get(key), dict):
            out[key] = _merge_defaults(v, out[key])
        else:
            out[key] = v
    return out


def _property_defaults(prop: dict[str, Any]) -> dict[str, Any]:
    p = dict(prop)
    base_type = p["dataType"][0].removesuffix("[]")
    p.setdefault("description", "")
    p.setdefault("indexFilterable", True)
    p.setdefault("indexSearchable", base_type == "text")
    p.setdefault("indexRangeFilters", False)
    if base_type == "text":
        p.setdefault("tokenization", "word")
    return p


class FakeWeaviate:
    """One fake server: ``http_port`` (REST) and ``grpc_port`` on 127.0.0.1. Use as a context manager."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.classes: dict[str, StoredClass] = {}
        self.calls: list[GrpcCall] = []
        self.http_requests: list[tuple[str, str]] = []
        self.reject_objects: dict[str, str] = {}
        self._http_failures: list[tuple[str, str, int]] = []
        self._grpc_failures: dict[str, list[grpc.StatusCode]] = {}
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._http.daemon_threads = True
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        weaviate_pb2_grpc.add_WeaviateServicer_to_server(_Servicer(self), self._grpc)  # type: ignore[no-untyped-call]
        self._grpc.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
            "Check": grpc.unary_unary_rpc_method_handler(
                lambda req, ctx: health_weaviate_pb2.WeaviateHealthCheckResponse(
                    status=health_weaviate_pb2.WeaviateHealthCheckResponse.SERVING),
                request_deserializer=health_weaviate_pb2.WeaviateHealthCheckRequest.FromString,
                response_serializer=health_weaviate_pb2.WeaviateHealthCheckResponse.SerializeToString,
            ),
        }),))
        self.grpc_port = self._grpc.add_insecure_port("127.0.0.1:0")
        self.http_port = self._http.server_address[1]
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def __enter__(self) -> FakeWeaviate:
        self._grpc.start()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._grpc.stop(grace=None)

    # -- fault injection -------------------------------------------------------------------------
    def fail_http(self, method: str, path_prefix: str, status: int, times: int = 1) -> None:
        with self._lock:
            self._http_failures.extend([(method, path_prefix, status)] * times)

    def fail_grpc(self, rpc: str, code: grpc.StatusCode, times: int = 1) -> None:
        with self._lock:
            self._grpc_failures.setdefault(rpc, []).extend([code] * times)

    def take_http_failure(self, method: str, path: str) -> int | None:
        with self._lock:
            for i, (m, prefix, status) in enumerate(self._http_failures):
                if m == method and path.startswith(prefix):
                    del self._http_failures[i]
                    return status
        return None

    def take_grpc_failure(self, rpc: str) -> grpc.StatusCode | None:
        with self._lock:
            queue = self._grpc_failures.get(rpc)
            return queue.pop(0) if queue else None

    # -- schema ----------------------------------------------------------------------------------
    def get_class(self, name: str) -> StoredClass:
        cls = self.classes.get(name[:1].upper() + name[1:])
        if cls is None:
            raise FakeError(f'could not find class {name} in schema', grpc.StatusCode.NOT_FOUND)
        return cls

    def create_class(self, body: dict[str, Any]) -> dict[str, Any]:
        name = str(body["class"])
        name = name[:1].upper() + name[1:]
        if name in self.classes:
            raise FakeError(f'class name "{name}" already exists')
        config = dict(body, **{"class": name})
        config["invertedIndexConfig"] = _merge_defaults(body.get("invertedIndexConfig", {}), _INVERTED_DEFAULTS)
        config["multiTenancyConfig"] = _merge_defaults(
            body.get("multiTenancyConfig", {}),
            {"enabled": False, "autoTenantCreation": False, "autoTenantActivation": False})
        config["replicationConfig"] = _merge_defaults(
            body.get("replicationConfig", {}), {"factor": 1, "asyncEnabled": False, "deletionStrategy": "NoAutomatedResolution"})
        config["shardingConfig"] = {
            "virtualPerPhysical": 128, "desiredCount": 1, "actualCount": 1, "desiredVirtualCount": 128,
            "actualVirtualCount": 128, "key": "_id", "strategy": "hash", "function": "murmur3",
        } if not config["multiTenancyConfig"]["enabled"] else {
            "virtualPerPhysical": 0, "desiredCount": 0, "actualCount": 0, "desiredVirtualCount": 0,
            "actualVirtualCount": 0, "key": "", "strategy": "", "function": "",
        }
        vector_config = body.get("vectorConfig")
        if not vector_config:
            raise FakeError("the fake only models collections with named vectors (vectorConfig)")
        config["vectorConfig"] = {
            vname: {
                "vectorizer": vc.get("vectorizer", {"none": {}}),
                "vectorIndexType": vc.get("vectorIndexType", "hnsw"),
                "vectorIndexConfig": _merge_defaults(vc.get("vectorIndexConfig", {}), _HNSW_DEFAULTS),
            }
            for vname, vc in vector_config.items()
        }
        config["properties"] = [_property_defaults(p) for p in body.get("properties", [])]
        config.pop("vectorizer", None)
        stored = StoredClass(config)
        if not stored.multi_tenant:
            stored.shards[""] = {}
        self.classes[name] = stored
        return copy.deepcopy(config)

    def add_property(self, cls_name: str, prop: dict[str, Any]) -> dict[str, Any]:
        cls = self.get_class(cls_name)
        if cls.prop(prop["name"]) is not None:
            raise FakeError(f"property '{prop['name']}' already exists")
        full = _property_defaults({k: v for k, v in prop.items() if k != "moduleConfig"})
        cls.config["properties"].append(full)
        return copy.deepcopy(full)

    def add_tenants(self, cls_name: str, tenants: list[dict[str, Any]]) -> list[dict[str, Any]]:
        cls = self.get_class(cls_name)
        if not cls.multi_tenant:
            raise FakeError(f'multi-tenancy is not enabled for class "{cls.name}"')
        for t in tenants:
            cls.shards.setdefault(str(t["name"]), {})
        return [{"name": t["name"], "activityStatus": "ACTIVE"} for t in tenants]

    def shard(self, cls: StoredClass, tenant: str) -> dict[str, StoredObject]:
        if cls.multi_tenant:
            if not tenant:
                raise FakeError(f'class {cls.name} has multi-tenancy enabled, but request was without tenant',
                                grpc.StatusCode.UNKNOWN)
            if tenant not in cls.shards:
                raise FakeError(f'tenant not found: "{tenant}"', grpc.StatusCode.UNKNOWN)
        elif tenant:
            raise FakeError(f'class {cls.name} has multi-tenancy disabled, but request was with tenant',
                            grpc.StatusCode.UNKNOWN)
        return cls.shards[tenant]

    # -- objects ---------------------------------------------------------------------------------
    def put_object(self, obj: Any) -> str | None:
        """Store one ``BatchObject``; returns Weaviate's per-object error message or None."""
        try:
            cls = self.get_class(obj.collection)
            shard = self.shard(cls, obj.tenant)
        except FakeError as exc:
            return str(exc)
        if obj.uuid in self.reject_objects:
            return self.reject_objects[obj.uuid]
        props: dict[str, Any] = {}
        p = obj.properties
        for key, value in _struct_to_dict(p.non_ref_properties).items():
            props[key] = value
        for arr in p.number_array_properties:
            props[arr.prop_name] = (list(struct.unpack(f"<{len(arr.values_bytes) // 8}d", arr.values_bytes))
                                    if arr.values_bytes else list(arr.values))
        for arr in p.text_array_properties:
            props[arr.prop_name] = list(arr.values)
        for arr in p.boolean_array_properties:
            props[arr.prop_name] = list(arr.values)
        for name in p.empty_list_props:
            props[name] = []
        for key, value in props.items():
            schema_prop = cls.prop(key)
            if schema_prop is None:
                return (f"no such prop with name '{key}' found in class '{cls.name}' in the schema. "
                        "Check your schema files for which properties in this class are available")
            problem = _type_problem(schema_prop["dataType"][0], value)
            if problem:
                return f"invalid {schema_prop['dataType'][0]} property '{key}' on class '{cls.name}': {problem}"
        names = list(cls.config["vectorConfig"])
        vectors: dict[str, np.ndarray[Any, np.dtype[np.float32]]] = {}
        if obj.vector_bytes:
            if len(names) != 1:
                return (f"collection {cls.name} is configured with {len(names)} named vectors, "
                        "but the object has an unnamed vector")
            vectors[names[0]] = np.frombuffer(obj.vector_bytes, dtype="<f4").astype(np.float32)
        elif obj.vector:
            vectors[names[0]] = np.asarray(list(obj.vector), dtype=np.float32)
        for v in obj.vectors:
            vectors[v.name or names[0]] = np.frombuffer(v.vector_bytes, dtype="<f4").astype(np.float32)
        for vname, vec in vectors.items():
            dims = {len(o.vectors[vname]) for s in cls.shards.values() for o in s.values() if vname in o.vectors}
            if dims and len(vec) not in dims:
                return (f"new node has a vector with length {len(vec)}. "
                        f"Existing nodes have vectors with length {dims.pop()}")
        shard[obj.uuid] = StoredObject(obj.uuid, props, vectors, int(time.time() * 1000))
        return None


_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?(Z|[+-][0-9]{2}:[0-9]{2})"
)
_EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()


def unix_nano(text: object) -> int | None:
    """What Weaviate indexes for a date: Go's ``time.Parse(time.RFC3339Nano, text).UnixNano()``.

    None when Go would refuse the text. Go computes UnixNano in int64 and documents the result as
    undefined beyond it (years before 1678 or after 2261); in practice the arithmetic wraps, so the
    fake wraps too rather than being more exact than the server.
    """
    m = _RFC3339.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        return None
    try:
        day = datetime.date(int(m[1]), int(m[2]), int(m[3])).toordinal() - _EPOCH_ORDINAL
    except ValueError:
        return None
    hour, minute, second = int(m[4]), int(m[5]), int(m[6])
    if hour > 23 or minute > 59 or second > 59:
        return None
    offset = 0
    if m[8] != "Z":
        oh, om = int(m[8][1:3]), int(m[8][4:6])
        if oh > 23 or om > 59:
            return None
        offset = (oh * 3600 + om * 60) * (-1 if m[8][0] == "-" else 1)
    seconds = day * 86_400 + hour * 3600 + minute * 60 + second - offset
    nanos = seconds * 10**9 + int((m[7] or "").ljust(9, "0"))
    return (nanos + 2**63) % 2**64 - 2**63


def _type_problem(data_type: str, value: Any) -> str | None:
    def ok(base: str, v: Any) -> bool:
        if base == "text":
            return isinstance(v, str)
        if base == "date":
            return unix_nano(v) is not None
        if base == "number":
            return isinstance(v, int | float) and not isinstance(v, bool)
        if base == "boolean":
            return isinstance(v, bool)
        return True

    base = data_type.removesuffix("[]")
    if data_type.endswith("[]"):
        if not isinstance(value, list) or not all(ok(base, v) for v in value):
            return f"not a {data_type} array: {value!r}"
        return None
    if base in _SCALAR_TYPES and value is not None and not ok(base, value):
        return f"not a {base}, but {type(value).__name__}"
    return None


def _struct_to_dict(s: Struct) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in s.fields.items():
        kind = value.WhichOneof("kind")
        if kind == "string_value":
            out[key] = value.string_value
        elif kind == "number_value":
            out[key] = value.number_value
        elif kind == "bool_value":
            out[key] = value.bool_value
        elif kind == "null_value":
            out[key] = None
        else:
            raise FakeError(f"the fake does not model property {key!r} of kind {kind}")
    return out


# --- filters --------------------------------------------------------------------------------------

def _filter_values(f: Any) -> list[Any]:
    kind = f.WhichOneof("test_value")
    if kind is None:
        return []
    if kind in ("value_text", "value_int", "value_boolean", "value_number"):
        return [getattr(f, kind)]
    return list(getattr(f, kind).values)


def _target(f: Any) -> str:
    if f.HasField("target"):
        if f.target.WhichOneof("target") != "property":
            raise FakeError("the fake does not model reference filters")
        return str(f.target.property)
    return str(f.on[-1])


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    return bool(float(a) == float(b))


def evaluate(f: Any, cls: StoredClass, obj: StoredObject) -> bool:
    """Weaviate's semantics of one ``Filters`` node on one object."""
    op = f.operator
    if op == F.OPERATOR_AND:
        return all(evaluate(c, cls, obj) for c in f.filters)
    if op == F.OPERATOR_OR:
        return any(evaluate(c, cls, obj) for c in f.filters)
    if op == F.OPERATOR_NOT:
        if len(f.filters) != 1:
            raise FakeError("operator Not requires exactly one operand", grpc.StatusCode.INVALID_ARGUMENT)
        return not evaluate(f.filters[0], cls, obj)
    name = _target(f)
    values = _filter_values(f)
    if name == "_id":
        elems: list[Any] = [obj.uuid]
        values = [str(uuid.UUID(v)) for v in values]
    else:
        prop = cls.prop(name)
        if prop is None:
            raise FakeError(f"no such prop with name '{name}' found in class '{cls.name}' in the schema. "
                            "Check your schema files for which properties in this class are available",
                            grpc.StatusCode.UNKNOWN)
        if op == F.OPERATOR_IS_NULL:
            if not cls.config["invertedIndexConfig"]["indexNullState"]:
                raise FakeError("Nullstate must be indexed to be filterable! Add `indexNullState: true` "
                                "to the invertedIndexConfig", grpc.StatusCode.UNKNOWN)
            raw = obj.properties.get(name)
            return (raw is None or raw == []) == bool(values[0])
        if not prop["indexFilterable"] and not prop["indexRangeFilters"]:
            raise FakeError(f"Filtering by property '{name}' requires inverted index. Is `indexFilterable` "
                            "option of property enabled? Set it to `true` or leave empty",
                            grpc.StatusCode.UNKNOWN)
        if prop["dataType"][0].startswith("text") and prop.get("tokenization") != "field":
            raise FakeError(f"the fake models only field tokenization; property {name!r} uses "
                            f"{prop.get('tokenization')!r}", grpc.StatusCode.UNIMPLEMENTED)
        raw = obj.properties.get(name)
        elems = [] if raw is None else list(raw) if isinstance(raw, list) else [raw]
    is_date = name != "_id" and cls.prop(name)["dataType"][0].startswith("date")  # type: ignore[index]
    ranges = {F.OPERATOR_GREATER_THAN: operator.gt, F.OPERATOR_GREATER_THAN_EQUAL: operator.ge,
              F.OPERATOR_LESS_THAN: operator.lt, F.OPERATOR_LESS_THAN_EQUAL: operator.le}
    if is_date and op not in ranges:
        raise FakeError(f"the fake models only range filters on date property {name!r}",
                        grpc.StatusCode.UNIMPLEMENTED)
    hit_any = any(_same(e, v) for e in elems for v in values)
    if op == F.OPERATOR_EQUAL:
        return hit_any
    if op == F.OPERATOR_NOT_EQUAL:
        return not hit_any
    if op == F.OPERATOR_CONTAINS_ANY:
        return hit_any
    if op == F.OPERATOR_CONTAINS_ALL:
        return all(any(_same(e, v) for e in elems) for v in values)
    if op == F.OPERATOR_CONTAINS_NONE:
        return not hit_any
    if op in ranges and is_date:
        (text,) = values
        bound = unix_nano(text)
        if bound is None:
            raise FakeError(f"parse date filter value {text!r}: not RFC 3339", grpc.StatusCode.UNKNOWN)
        return any(ranges[op](unix_nano(e), bound) for e in elems)
    if op in ranges:
        (bound,) = values
        return any(isinstance(e, int | float) and not isinstance(e, bool) and ranges[op](float(e), float(bound))
                   for e in elems)
    raise FakeError(f"the fake does not model filter operator {F.Operator.Name(op)}",
                    grpc.StatusCode.UNIMPLEMENTED)


# --- gRPC -----------------------------------------------------------------------------------------

def _distance(metric: str, stored: np.ndarray[Any, Any], query: np.ndarray[Any, Any]) -> float:
    a, b = stored.astype(np.float64), query.astype(np.float64)
    if metric == "cosine":
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        return float(1.0 - (a @ b) / (na * nb)) if na and nb else 1.0
    if metric == "dot":
        return float(-(a @ b))
    if metric == "l2-squared":
        return float(np.sum((a - b) ** 2))
    raise FakeError(f"the fake does not model distance {metric!r}", grpc.StatusCode.UNIMPLEMENTED)


def _value(v: Any) -> Any:
    if isinstance(v, bool):
        return properties_pb2.Value(bool_value=v)
    if isinstance(v, str):
        return properties_pb2.Value(text_value=v)
    if isinstance(v, int | float):
        return properties_pb2.Value(number_value=float(v))
    if v is None:
        return properties_pb2.Value(null_value=0)
    if isinstance(v, list):
        if v and isinstance(v[0], bool):
            return properties_pb2.Value(list_value=properties_pb2.ListValue(
                bool_values=properties_pb2.BoolValues(values=v)))
        if v and isinstance(v[0], str):
            return properties_pb2.Value(list_value=properties_pb2.ListValue(
                text_values=properties_pb2.TextValues(values=v)))
        return properties_pb2.Value(list_value=properties_pb2.ListValue(
            number_values=properties_pb2.NumberValues(values=struct.pack(f"<{len(v)}d", *v))))
    raise FakeError(f"cannot encode {v!r}")


class _Servicer(weaviate_pb2_grpc.WeaviateServicer):
    def __init__(self, fake: FakeWeaviate) -> None:
        self.fake = fake

    def _enter(self, rpc: str, collection: str, tenant: str, context: Any, kind: str = "") -> None:
        with self.fake._lock:
            self.fake.calls.append(GrpcCall(rpc, collection, tenant, kind))
        code = self.fake.take_grpc_failure(rpc)
        if code is not None:
            context.abort(code, f"injected {code.name} for {rpc}")

    def _run(self, context: Any, fn: Any) -> Any:
        try:
            with self.fake._lock:
                return fn()
        except FakeError as exc:
            context.abort(exc.code, str(exc))

    def _selected(self, cls: StoredClass, tenant: str, filters: Any | None) -> list[StoredObject]:
        objs = sorted(self.fake.shard(cls, tenant).values(), key=lambda o: o.uuid)
        return [o for o in objs if filters is None or evaluate(filters, cls, o)]

    def BatchObjects(self, request: Any, context: Any) -> Any:
        first = request.objects[0] if request.objects else None
        self._enter("BatchObjects", first.collection if first else "", first.tenant if first else "", context)

        def run() -> Any:
            started = time.perf_counter()
            errors = []
            for i, obj in enumerate(request.objects):
                message = self.fake.put_object(obj)
                if message is not None:
                    errors.append(batch_pb2.BatchObjectsReply.BatchError(index=i, error=message))
            return batch_pb2.BatchObjectsReply(took=time.perf_counter() - started, errors=errors)

        return self._run(context, run)

    def BatchDelete(self, request: Any, context: Any) -> Any:
        self._enter("BatchDelete", request.collection, request.tenant, context)

        def run() -> Any:
            started = time.perf_counter()
            cls = self.fake.get_class(request.collection)
            shard = self.fake.shard(cls, request.tenant)
            hit = self._selected(cls, request.tenant, request.filters)[:QUERY_MAXIMUM_RESULTS]
            if not request.dry_run:
                for o in hit:
                    del shard[o.uuid]
            return batch_delete_pb2.BatchDeleteReply(
                took=time.perf_counter() - started, failed=0, matches=len(hit),
                successful=0 if request.dry_run else len(hit),
                objects=[batch_delete_pb2.BatchDeleteObject(uuid=uuid.UUID(o.uuid).bytes, successful=True)
                         for o in hit] if request.verbose else [],
            )

        return self._run(context, run)

    def TenantsGet(self, request: Any, context: Any) -> Any:
        self._enter("TenantsGet", request.collection, "", context)

        def run() -> Any:
            cls = self.fake.get_class(request.collection)
            if not cls.multi_tenant:
                raise FakeError(f'multi-tenancy is not enabled for class "{cls.name}"')
            names = set(request.names.values) if request.HasField("names") else None
            return tenants_pb2.TenantsGetReply(took=0.0, tenants=[
                tenants_pb2.Tenant(name=n, activity_status=tenants_pb2.TENANT_ACTIVITY_STATUS_ACTIVE)
                for n in sorted(cls.shards) if names is None or n in names
            ])

        return self._run(context, run)

    def Aggregate(self, request: Any, context: Any) -> Any:
        self._enter("Aggregate", request.collection, request.tenant, context)

        def run() -> Any:
            if request.aggregations or request.HasField("group_by") or request.WhichOneof("search"):
                raise FakeError("the fake models only objects_count aggregations", grpc.StatusCode.UNIMPLEMENTED)
            cls = self.fake.get_class(request.collection)
            filters = request.filters if request.HasField("filters") else None
            n = len(self._selected(cls, request.tenant, filters))
            return aggregate_pb2.AggregateReply(took=0.0, single_result=aggregate_pb2.AggregateReply.Single(
                objects_count=n if request.objects_count else None))

        return self._run(context, run)

    def Search(self, request: Any, context: Any) -> Any:
        kind = next((k for k in ("near_vector", "near_object") if request.HasField(k)), "")
        self._enter("Search", request.collection, request.tenant, context, kind)
        return self._run(context, lambda: self._search(request))

    def _search(self, request: Any) -> Any:
        started = time.perf_counter()
        cls = self.fake.get_class(request.collection)
        filters = request.filters if request.HasField("filters") else None
        if request.after and filters is not None:
            raise FakeError("explorer: list: cursor api: invalid 'after' parameter: where filter cannot be "
                            "set with after and limit parameters", grpc.StatusCode.INVALID_ARGUMENT)
        limit = request.limit or 10
        if limit + request.offset > QUERY_MAXIMUM_RESULTS:
            raise FakeError(f"query maximum results exceeded: limit + offset must not exceed "
                            f"{QUERY_MAXIMUM_RESULTS}", grpc.StatusCode.INVALID_ARGUMENT)
        objs = self._selected(cls, request.tenant, filters)
        (vname, vconf), *_ = cls.config["vectorConfig"].items()
        metric = vconf["vectorIndexConfig"]["distance"]
        distances: dict[str, float] = {}
        query = self._query_vector(request, cls, vname)
        if query is not None:
            objs = [o for o in objs if vname in o.vectors]
            for o in objs:
                distances[o.uuid] = _distance(metric, o.vectors[vname], query)
            objs.sort(key=lambda o: distances[o.uuid])
        elif request.after:
            objs = [o for o in objs if o.uuid > str(uuid.UUID(request.after))]
        objs = objs[request.offset : request.offset + limit]
        results = [self._result(request, o, distances.get(o.uuid)) for o in objs]
        return search_get_pb2.SearchReply(took=time.perf_counter() - started, results=results)

    def _query_vector(self, request: Any, cls: StoredClass, vname: str) -> np.ndarray[Any, Any] | None:
        if request.HasField("near_object"):
            shard = self.fake.shard(cls, request.tenant)
            target = shard.get(str(uuid.UUID(request.near_object.id)))
            if target is None:
                raise FakeError(f"explorer: get class: vectorize params: nearObject params: vector not found: "
                                f"id {request.near_object.id}")
            return target.vectors[vname]
        if request.HasField("near_vector"):
            nv = request.near_vector
            if nv.vector_bytes:
                return np.frombuffer(nv.vector_bytes, dtype="<f4")
            if nv.vectors:
                return np.frombuffer(nv.vectors[0].vector_bytes, dtype="<f4")
            return np.asarray(list(nv.vector), dtype=np.float32)
        for other in ("hybrid_search", "bm25_search", "near_text", "group_by"):
            if request.HasField(other):
                raise FakeError(f"the fake does not model {other}", grpc.StatusCode.UNIMPLEMENTED)
        return None

    def _result(self, request: Any, o: StoredObject, distance: float | None) -> Any:
        md = request.metadata
        meta = search_get_pb2.MetadataResult(id=o.uuid, id_as_bytes=uuid.UUID(o.uuid).bytes)
        if distance is not None and md.distance:
            meta.distance, meta.distance_present = distance, True
        if md.creation_time_unix:
            meta.creation_time_unix, meta.creation_time_unix_present = o.created_ms, True
        if md.vector or md.vectors:
            for vname in (md.vectors or list(o.vectors)):
                if vname in o.vectors:
                    meta.vectors.append(base_pb2.Vectors(
                        name=vname, vector_bytes=o.vectors[vname].astype("<f4").tobytes(),
                        type=base_pb2.Vectors.VECTOR_TYPE_SINGLE_FP32))
        wanted = (list(o.properties) if request.properties.return_all_nonref_properties
                  else list(request.properties.non_ref_properties))
        props = properties_pb2.Properties(fields={
            name: _value(o.properties[name]) for name in wanted if name in o.properties
        })
        return search_get_pb2.SearchResult(
            metadata=meta, properties=search_get_pb2.PropertiesResult(
                non_ref_props=props, target_collection=request.collection))


# --- REST -----------------------------------------------------------------------------------------

def _handler_for(fake: FakeWeaviate) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else every keep-alive response waits ~40 ms for a delayed ACK

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(self, status: int, body: Any = None) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> Any:
            n = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(n)) if n else None

        def _route(self, method: str) -> None:
            path = self.path.split("?", 1)[0]
            body = self._body() if method in ("POST", "PUT") else None
            fake.http_requests.append((method, path))
            status = fake.take_http_failure(method, path)
            if status is not None:
                self._send(status, {"error": [{"message": f"injected {status}"}]})
                return
            try:
                with fake._lock:
                    code, out = self._dispatch(method, path.rstrip("/").split("/")[1:], body)
            except FakeError as exc:
                code, out = (404, None) if exc.code == grpc.StatusCode.NOT_FOUND else (
                    HTTPStatus.UNPROCESSABLE_ENTITY, {"error": [{"message": str(exc)}]})
            self._send(code, out)

        def _dispatch(self, method: str, parts: list[str], body: Any) -> tuple[int, Any]:
            match method, parts:
                case "GET", ["v1", "meta"]:
                    return 200, {"hostname": "http://[::]:8080", "modules": {}, "version": SERVER_VERSION,
                                 "grpcMaxMessageSize": 104858000}
                case "GET", ["v1", ".well-known", "ready" | "live"]:
                    return 200, None
                case "GET", ["pypi", "weaviate-client", "json"]:  # the client's "is there a newer client" probe
                    return 200, {"info": {"version": version("weaviate-client")}}
                case "GET", ["v1", "schema"]:
                    return 200, {"classes": [copy.deepcopy(c.config) for c in fake.classes.values()]}
                case "POST", ["v1", "schema"]:
                    return 200, fake.create_class(body)
                case "GET", ["v1", "schema", name]:
                    return 200, copy.deepcopy(fake.get_class(name).config)
                case "DELETE", ["v1", "schema", name]:
                    fake.classes.pop(name[:1].upper() + name[1:], None)
                    return 200, None
                case "POST", ["v1", "schema", name, "properties"]:
                    return 200, fake.add_property(name, body)
                case "POST", ["v1", "schema", name, "tenants"]:
                    return 200, fake.add_tenants(name, body)
                case "GET", ["v1", "schema", name, "tenants"]:
                    cls = fake.get_class(name)
                    return 200, [{"name": n, "activityStatus": "ACTIVE"} for n in sorted(cls.shards)]
            return 404, {"error": [{"message": f"the fake does not model {method} /{'/'.join(parts)}"}]}

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_PUT(self) -> None:
            self._route("PUT")

        def do_DELETE(self) -> None:
            self._route("DELETE")

    return Handler


def objects_of(fake: FakeWeaviate, cls_name: str, tenant: str = "") -> Iterator[StoredObject]:
    """Direct view of what the server holds (for assertions about the wire-level storage)."""
    with fake._lock:
        yield from list(fake.get_class(cls_name).shards.get(tenant, {}).values())
