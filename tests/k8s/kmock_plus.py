"""Shim: make kmock 0.8's KubernetesEmulator good enough for Kopf 1.45 + kubectl.

Fixes needed:
  1. /api/v1/namespaces[/NAME[/status|finalize]] crashes kmock's URL parser (500).
  2. No metadata.resourceVersion/uid/creationTimestamp -> Kopf's JSON-patch
     `test /metadata/resourceVersion` fails (500) and Kopf never adds its finalizer.
  3. JSON-patch test failures must be 422 (Kopf retries on 422), not 500.
  4. CREATE answers 200; the official python client maps only 201 -> returns None.
  5. LIST lacks kind/apiVersion -> `kubectl get <plural>` fails ("Object 'Kind' is missing").
  6. Core discovery says groupVersion "/v1"; subresources copy the parent's shortnames.
  7. Creating a CRD does not register its resource (discovery) -> register it in the shim.
  8. PUT (replace) is 404 -> map to a whole-object replace.
  9. WATCH ignores ?resourceVersion= and subscribes to the event bus only after
     sending the initial listing, so an update landing in between is lost (Kopf then
     waits forever for a newer version). The shim marks the bus under the lock
     before the initial listing, and skips listed objects not newer than the
     requested resourceVersion.
 10. kmock matches every request against its whole request history, once per reaction, so the thousands of
     requests of a long run slow each one down until the operator hardly moves: keep only those in flight.
 11. A merge patch that names a resourceVersion applies only to that version (409 Conflict otherwise), as on
     a real API server.
"""

import copy
import datetime
import itertools
import random
import string
import uuid
from typing import Any

import attrs
import jsonpatch
import kmock
from kmock._internal import enums, k8s, parsing, references

_orig_parse_path = parsing.parse_path


def _parse_path(path: str) -> parsing.ParsedPath:
    parts = [p for p in path.strip("/").split("/") if p]
    if len(parts) >= 3 and parts[0] == "api" and parts[2] == "namespaces":
        rest = parts[3:]
        if not rest:
            return parsing.ParsedPath("", parts[1], "namespaces", None, None, None)
        if len(rest) == 1:
            return parsing.ParsedPath("", parts[1], "namespaces", None, rest[0], None)
        if len(rest) == 2 and rest[1] in ("status", "finalize"):
            return parsing.ParsedPath("", parts[1], "namespaces", None, rest[0], rest[1])
    return _orig_parse_path(path)


parsing.parse_path = _parse_path

CRDS = references.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@attrs.define(kw_only=True)
class Emulator(kmock.KubernetesEmulator):
    _rv: Any = attrs.field(factory=lambda: itertools.count(1), init=False)
    _last_rv: int = attrs.field(default=0, init=False)

    def _next_rv(self) -> str:
        self._last_rv = next(self._rv)
        return str(self._last_rv)

    def _register_crd(self, crd: dict) -> None:
        spec = crd.get("spec", {})
        names = spec.get("names", {})
        for ver in spec.get("versions", []):
            self.resources[f"{spec['group']}/{ver['name']}/{names['plural']}"] = kmock.ResourceInfo(
                kind=names.get("kind"),
                singular=names.get("singular"),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                verbs={"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"},
                shortnames=set(names.get("shortNames", [])),
                categories=set(names.get("categories", [])),
                subresources={"status"} if "status" in (ver.get("subresources") or {}) else set(),
            )

    _serving: dict[int, Any] = attrs.field(factory=dict, init=False)

    async def _handle(self, request):
        self._serving[id(request)] = request
        self._requests[:] = [r for r in self._requests if id(r) in self._serving]
        try:
            self._check_precondition(request)
            return await self._shimmed(request)
        finally:
            del self._serving[id(request)]

    def _check_precondition(self, request: Any) -> None:
        data = request.data
        if request.action != enums.action.UPDATE or not isinstance(data, dict):
            return
        want = (data.get("metadata") or {}).get("resourceVersion")
        key = (request.resource, request.namespace, request.name)
        if not want or key not in self._objects or self._objects[key].deleted:
            return
        have = (self._objects[key].get("metadata") or {}).get("resourceVersion")
        if str(have) != str(want):
            raise k8s.KubernetesError(
                status=409,
                reason="Conflict",
                message="the object has been modified; please apply your changes to the latest version",
            )

    async def _shimmed(self, request):
        if request.resource is not None:
            data = request.data
            if request.method == enums.method.PUT and request.name is not None and isinstance(data, dict):
                # replace: whole-document JSON patch, then stamp a new resourceVersion.
                object.__setattr__(request, "action", enums.action.UPDATE)
                new = copy.deepcopy(data)
                new.setdefault("metadata", {})["resourceVersion"] = self._next_rv()
                object.__setattr__(request, "data", [{"op": "replace", "path": "", "value": new}])
            elif request.action == enums.action.CREATE and isinstance(data, dict):
                md = data.setdefault("metadata", {})
                if not md.get("name") and md.get("generateName"):
                    suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
                    md["name"] = md["generateName"] + suffix
                if request.namespace and not md.get("namespace"):
                    md["namespace"] = request.namespace
                md.setdefault("uid", str(uuid.uuid4()))
                md.setdefault("creationTimestamp", _now())
                md.setdefault("generation", 1)
                md["resourceVersion"] = self._next_rv()
                if request.resource == CRDS:
                    self._register_crd(data)
                    versions = data.get("spec", {}).get("versions", [])
                    data["status"] = {
                        "acceptedNames": data.get("spec", {}).get("names", {}),
                        "storedVersions": [v["name"] for v in versions if v.get("storage")],
                        "conditions": [
                            {"type": "NamesAccepted", "status": "True", "lastTransitionTime": _now()},
                            {"type": "Established", "status": "True", "lastTransitionTime": _now()},
                        ],
                    }
            elif request.action == enums.action.UPDATE and isinstance(data, dict):
                data.setdefault("metadata", {})["resourceVersion"] = self._next_rv()
            elif request.action == enums.action.UPDATE and isinstance(data, list):
                data.append({"op": "add", "path": "/metadata/resourceVersion", "value": self._next_rv()})
        try:
            response = await super()._handle(request)
        except (jsonpatch.JsonPatchTestFailed, jsonpatch.JsonPatchConflict, jsonpatch.JsonPointerException) as e:
            raise k8s.KubernetesError(status=422, reason="Invalid", message=str(e)) from e
        if request.action == enums.action.CREATE and getattr(response, "status", None) == 200 and not response.prepared:
            response.set_status(201)
        return response

    async def _serve_list(self, request):
        result = dict(await super()._serve_list(request))
        res = request.resource
        info = self.resources[res] if res in self.resources else None  # noqa: SIM401 (no .get on kmock's registry)
        kind = info.kind if info and info.kind else res.plural.capitalize()
        result["kind"] = f"{kind}List"
        result["apiVersion"] = f"{res.group}/{res.version}" if res.group else res.version
        result["metadata"] = {"resourceVersion": str(self._last_rv)}
        return result

    async def _serve_watch(self, request):
        yield b""
        since = request.params.get("resourceVersion") if request.params else None
        since_rv = int(since) if since and since.isdigit() else 0
        bus = self._buses[request.resource]
        async with self._lock:
            mark = await bus.mark()
            objs = [o for o in self._KubernetesEmulator__get_objs(request, strict=False) if not o.deleted]
            events = [
                {"type": "ADDED", "object": o.raw}
                for o in objs
                if int(o.get("metadata", {}).get("resourceVersion") or 0) > since_rv
            ]
        try:
            for event in events:
                yield event
            async for event in bus.stream(since=mark):
                md = event.get("object", {}).get("metadata", {})
                check = self._KubernetesEmulator__check
                if check(request, request.resource, md.get("namespace"), md.get("name"), strict=False):
                    yield event
        finally:
            await bus.unmark(mark)

    async def _serve_version(self, request):
        result = dict(await super()._serve_version(request))
        if request.resource.group == "":
            result["groupVersion"] = request.resource.version
        for r in result.get("resources", []):
            if "/" in r["name"]:
                r.update(shortNames=[], categories=[], singularName="", verbs=["get", "patch", "update"])
        return result
