"""Small, typed helpers over the official Kubernetes client: idempotent create, tolerant delete, label lists.

List calls filter by label on the client as well, so a server that ignores selectors cannot leak other runs'
objects into a run's view.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from . import API_GROUP, API_VERSION, MANAGER
from .status import now

log = logging.getLogger(__name__)

MERGE = "application/merge-patch+json"
T = TypeVar("T")
# Requests a reconcile makes at once rather than one after another (its lists after a Job finished, its Events).
# Only reconcile threads submit here, and no request waits on another, so the pool cannot deadlock.
PARALLEL_REQUESTS = 32
PARALLEL = ThreadPoolExecutor(PARALLEL_REQUESTS, "envgen-api")


class TransientError(Exception):
    """The API or a dependency failed in a way that retrying later can fix."""


class RunGone(Exception):
    """The run was deleted (or is being deleted) while it was being reconciled."""


class ChildCreateError(Exception):
    """The API refused to create one of a run's children (RBAC, admission, quota, an invalid manifest)."""

    def __init__(self, kind: str, name: str, exc: ApiException) -> None:
        self.kind, self.name = kind, name
        self.reason = str(exc.reason or "Failed").replace(" ", "") or "Failed"
        self.detail = _api_message(exc)
        super().__init__(f"cannot create {kind} {name}: {self.detail}")


def _api_message(exc: ApiException) -> str:
    """The apiserver's own message in an error reply, else the HTTP reason."""
    try:
        return str(json.loads(exc.body or "")["message"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {exc.status} {exc.reason}"


def transient(exc: Exception) -> bool:
    """Whether an API failure is worth a retry (server errors, throttling, conflicts, network)."""
    if isinstance(exc, ApiException):
        return exc.status in (0, 409, 429) or (exc.status or 0) >= 500
    return isinstance(exc, urllib3.exceptions.HTTPError | OSError)


class Kube:
    """The API calls the operator makes, in one namespace."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.ns = namespace
        self.custom = client.CustomObjectsApi(api)
        self.batch = client.BatchV1Api(api)
        self.core = client.CoreV1Api(api)

    # ---- custom objects ----
    def get_custom(self, plural: str, name: str) -> dict[str, Any] | None:
        try:
            obj: dict[str, Any] = self.custom.get_namespaced_custom_object(  # type: ignore[assignment]
                API_GROUP, API_VERSION, self.ns, plural, name
            )
            return obj
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def list_custom(self, plural: str, labels: dict[str, str]) -> list[dict[str, Any]]:
        selector = ",".join(f"{k}={v}" for k, v in labels.items())
        listed: dict[str, Any] = self.custom.list_namespaced_custom_object(  # type: ignore[assignment]
            API_GROUP, API_VERSION, self.ns, plural, label_selector=selector
        )
        items: list[dict[str, Any]] = listed["items"]
        return [i for i in items if _matches(i.get("metadata", {}).get("labels"), labels)]

    def create_custom(self, plural: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """Create; the object as created, None when the name already exists."""
        created = self._created(
            body, lambda: self.custom.create_namespaced_custom_object(API_GROUP, API_VERSION, self.ns, plural, body)
        )
        return created if isinstance(created, dict) else None

    def patch_custom_status(
        self, plural: str, name: str, status: dict[str, Any], resource_version: str | None = None
    ) -> str | None:
        """Merge-patch the status subresource, only over ``resource_version`` when given (409 Conflict when another
        writer came first); the object's new resourceVersion. RunGone when the object no longer exists."""
        body: dict[str, Any] = {"status": status}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        try:
            obj = self.custom.patch_namespaced_custom_object_status(API_GROUP, API_VERSION, self.ns, plural, name, body)
        except ApiException as exc:
            if exc.status == 404:
                raise RunGone(name) from None
            raise
        version = (obj.get("metadata") or {}).get("resourceVersion") if isinstance(obj, dict) else None
        return str(version) if version else None

    def delete_custom(self, plural: str, name: str) -> None:
        self._deleted(
            lambda: self.custom.delete_namespaced_custom_object(API_GROUP, API_VERSION, self.ns, plural, name)
        )

    # ---- built-in objects ----
    def list_jobs(self, labels: dict[str, str]) -> list[dict[str, Any]]:
        return self._list(self.batch.list_namespaced_job, labels)

    def list_pods(self, labels: dict[str, str]) -> list[dict[str, Any]]:
        return self._list(self.core.list_namespaced_pod, labels)

    def list_events(self, field_selector: str) -> list[dict[str, Any]]:
        """Events of the namespace matching a field selector (e.g. ``reason=FailedCreate``)."""
        items: list[dict[str, Any]] = (
            json.loads(_raw(self.core.list_namespaced_event, self.ns, field_selector=field_selector)).get("items") or []
        )
        return items

    def create_job(self, body: Any) -> bool:
        """Create; False when the name already exists."""
        return self._created(body, lambda: _raw(self.batch.create_namespaced_job, self.ns, body)) is not None

    def delete_job(self, name: str) -> None:
        self._deleted(lambda: self.batch.delete_namespaced_job(name, self.ns, propagation_policy="Background"))

    def create_claim(self, body: Any) -> bool:
        """Create; False when the name already exists."""
        create = self.core.create_namespaced_persistent_volume_claim
        return self._created(body, lambda: _raw(create, self.ns, body)) is not None

    def list_claims(self, labels: dict[str, str]) -> list[dict[str, Any]]:
        return self._list(self.core.list_namespaced_persistent_volume_claim, labels)

    def delete_claim(self, name: str) -> None:
        self._deleted(lambda: self.core.delete_namespaced_persistent_volume_claim(name, self.ns))

    def secret_value(self, name: str, key: str) -> str | None:
        """A Secret's key, decoded; None when the Secret or key is missing."""
        try:
            secret = self.core.read_namespaced_secret(name, self.ns)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        raw = (secret.data or {}).get(key)
        return base64.b64decode(raw).decode() if raw is not None else None

    def event(self, involved: dict[str, Any], kind: str, reason: str, message: str) -> None:
        """Post a core/v1 Event about an object; failures are logged, never raised."""
        md = involved["metadata"]
        stamp = now()
        body: Any = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{md['name']}.{uuid.uuid4().hex[:12]}", "namespace": self.ns},
            "involvedObject": {
                "apiVersion": involved.get("apiVersion"),
                "kind": involved.get("kind"),
                "name": md["name"],
                "namespace": self.ns,
                "uid": md.get("uid"),
            },
            "type": kind,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": MANAGER},
            "reportingComponent": MANAGER,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            _raw(self.core.create_namespaced_event, self.ns, body)
        except (ApiException, urllib3.exceptions.HTTPError) as exc:
            log.warning("could not post event %s on %s: %s", reason, md["name"], exc)

    # ---- plumbing ----
    def _list(self, list_fn: Any, labels: dict[str, str]) -> list[dict[str, Any]]:
        selector = ",".join(f"{k}={v}" for k, v in labels.items())
        result = json.loads(_raw(list_fn, self.ns, label_selector=selector))
        return [i for i in result.get("items") or [] if _matches(i.get("metadata", {}).get("labels"), labels)]

    @staticmethod
    def _created(body: dict[str, Any], create: Callable[[], T]) -> T | None:
        """Run a create: its reply, None when the name exists; ChildCreateError when refused for good (not
        retryable)."""
        try:
            return create()
        except ApiException as exc:
            if exc.status == 409:
                return None
            if transient(exc):
                raise
            raise ChildCreateError(body["kind"], body["metadata"]["name"], exc) from exc

    @staticmethod
    def _deleted(delete: Any) -> None:
        try:
            delete()
        except ApiException as exc:
            if exc.status != 404:
                raise


def _raw(call: Any, *args: Any, **kwargs: Any) -> bytes:
    """An API call's reply as raw JSON bytes: the client's model objects cost far more CPU than the request."""
    data: bytes = call(*args, _preload_content=False, **kwargs).data
    return data


def _matches(have: dict[str, str] | None, want: dict[str, str]) -> bool:
    return all((have or {}).get(k) == v for k, v in want.items())
