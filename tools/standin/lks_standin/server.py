"""A small gRPC resource-provider server: the protocol plumbing shared by the stand-ins."""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable, Mapping
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import plugin_pb2, provider_pb2, provider_pb2_grpc

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's marker for unknown values


def to_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    """Protobuf Struct -> plain dict (whole floats become ints)."""
    result: dict[str, Any] = _ints(json_format.MessageToDict(struct))
    return result


_SIG = "4dabf18193072939515e22adb298388d"  # marks a secret (or other special) value


def _ints(value: Any) -> Any:
    """Whole floats -> int; secret wrappers -> their plain value."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        if _SIG in value and "value" in value:
            return _ints(value["value"])
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


def to_struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    """Plain dict -> protobuf Struct."""
    struct = struct_pb2.Struct()
    struct.update(dict(value))
    return struct


class ResourceType(Protocol):
    """What a stand-in implements for one resource type."""

    replace_keys: frozenset[str]

    def create(self, props: dict[str, Any], preview: bool) -> tuple[str, dict[str, Any]]: ...
    def read(self, id_: str, props: dict[str, Any]) -> dict[str, Any] | None: ...
    def update(
        self, id_: str, olds: dict[str, Any], news: dict[str, Any], preview: bool
    ) -> dict[str, Any]: ...
    def delete(self, id_: str, props: dict[str, Any]) -> None: ...


@dataclass
class Provider(provider_pb2_grpc.ResourceProviderServicer):
    """Dispatches the engine's calls to resource types and invokes by token."""

    name: str
    version: str
    configure: Callable[[dict[str, Any]], None]
    resources: dict[str, ResourceType] = field(default_factory=dict)
    invokes: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = field(default_factory=dict)

    # --- plugin and configuration
    def GetPluginInfo(self, request: Any, context: Any) -> Any:
        return plugin_pb2.PluginInfo(version=self.version)

    def GetSchema(self, request: Any, context: Any) -> Any:
        return provider_pb2.GetSchemaResponse(schema=json.dumps({"name": self.name, "version": self.version}))

    def CheckConfig(self, request: Any, context: Any) -> Any:
        return provider_pb2.CheckResponse(inputs=request.news)

    def DiffConfig(self, request: Any, context: Any) -> Any:
        return provider_pb2.DiffResponse(changes=provider_pb2.DiffResponse.DIFF_NONE)

    def Configure(self, request: Any, context: Any) -> Any:
        config = to_dict(request.args)
        prefix = f"{self.name}:config:"
        for key, value in request.variables.items():
            config.setdefault(key.removeprefix(prefix), value)
        self.configure(config)
        return provider_pb2.ConfigureResponse(acceptSecrets=False, supportsPreview=True)

    def Cancel(self, request: Any, context: Any) -> Any:
        return empty_pb2.Empty()

    # --- resources
    def _type(self, urn: str, context: Any) -> ResourceType:
        token = urn.split("::")[-2].rsplit("$", 1)[-1]
        if token not in self.resources:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, f"stand-in {self.name} does not implement {token}")
        return self.resources[token]

    def Check(self, request: Any, context: Any) -> Any:
        return provider_pb2.CheckResponse(inputs=request.news)

    def Diff(self, request: Any, context: Any) -> Any:
        kind = self._type(request.urn, context)
        olds, news = to_dict(request.old_inputs or request.olds), to_dict(request.news)
        ignored = set(request.ignoreChanges)
        changed = sorted(
            k for k in olds.keys() | news.keys() if olds.get(k) != news.get(k) and k not in ignored
        )
        replaces = [k for k in changed if k in kind.replace_keys]
        return provider_pb2.DiffResponse(
            changes=provider_pb2.DiffResponse.DIFF_SOME if changed else provider_pb2.DiffResponse.DIFF_NONE,
            diffs=changed,
            replaces=replaces,
        )

    def Create(self, request: Any, context: Any) -> Any:
        kind = self._type(request.urn, context)
        id_, outputs = _guard(context, lambda: kind.create(to_dict(request.properties), request.preview))
        return provider_pb2.CreateResponse(id=id_, properties=to_struct(outputs))

    def Read(self, request: Any, context: Any) -> Any:
        kind = self._type(request.urn, context)
        outputs = _guard(context, lambda: kind.read(request.id, to_dict(request.properties)))
        if outputs is None:  # gone: the engine drops it from the state
            return provider_pb2.ReadResponse(id="")
        return provider_pb2.ReadResponse(id=request.id, properties=to_struct(outputs), inputs=request.inputs)

    def Update(self, request: Any, context: Any) -> Any:
        kind = self._type(request.urn, context)
        olds, news = to_dict(request.olds), to_dict(request.news)
        outputs = _guard(context, lambda: kind.update(request.id, olds, news, request.preview))
        return provider_pb2.UpdateResponse(properties=to_struct(outputs))

    def Delete(self, request: Any, context: Any) -> Any:
        kind = self._type(request.urn, context)
        _guard(context, lambda: kind.delete(request.id, to_dict(request.properties)))
        return empty_pb2.Empty()

    def Invoke(self, request: Any, context: Any) -> Any:
        if request.tok not in self.invokes:
            context.abort(
                grpc.StatusCode.UNIMPLEMENTED, f"stand-in {self.name} does not implement {request.tok}"
            )
        result = _guard(context, lambda: self.invokes[request.tok](to_dict(request.args)))
        return provider_pb2.InvokeResponse(**{"return": to_struct(result)})


class ProviderError(Exception):
    """An error the engine shows to the operator as is."""


def _guard(context: Any, step: Callable[[], Any]) -> Any:
    try:
        return step()
    except ProviderError as exc:
        context.abort(grpc.StatusCode.UNKNOWN, str(exc))
    except Exception as exc:  # report anything else with its trace
        traceback.print_exc(file=sys.stderr)
        context.abort(grpc.StatusCode.UNKNOWN, f"{type(exc).__name__}: {exc}")
    return None


def serve(provider: Provider) -> None:
    """Listen on a free loopback port, print it (the plugin handshake), serve until killed."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    provider_pb2_grpc.add_ResourceProviderServicer_to_server(provider, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    server.wait_for_termination()
