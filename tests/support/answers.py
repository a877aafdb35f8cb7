"""A loopback proxy in front of a stand-in that breaks its answers on the way: the real client reads the
real answer with one field changed, as a service that drifted from its documented shape would send it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from rehearsal.loopback import LoopbackHandler, LoopbackServer

Doctor = Callable[[str, Any], Any]  # (path, the stand-in's JSON answer) -> the JSON sent instead
FORWARDED = ("authorization", "x-request-id", "idempotency-key", "content-type", "accept")


class _Handler(LoopbackHandler["Tamper"]):
    def serve(self, method: str) -> None:
        tamper = self.owner
        headers = {name: value for name, value in self.headers.items() if name.lower() in FORWARDED}
        answer = httpx.request(method, tamper.upstream + self.path, content=self.read_body() or None, headers=headers)
        payload = answer.content
        if payload:  # refusals too: their error shape is an answer the client reads
            payload = json.dumps(tamper.doctor(urlsplit(self.path).path, answer.json())).encode()
        # Next-page links name the stand-in; they must name this proxy for the client to follow them.
        kept = {
            name: value.replace(tamper.upstream, tamper.url)
            for name, value in answer.headers.items()
            if name.lower() in ("content-type", "x-request-id", "link")
        }
        self.send_payload(answer.status_code, {**kept, "content-length": str(len(payload))}, payload)


class Tamper(LoopbackServer):
    def __init__(self, upstream: str, doctor: Doctor) -> None:
        super().__init__(_Handler, host="127.0.0.1", port=0, thread_name="tamper")
        self.upstream, self.doctor = upstream, doctor


def changed(part: str, change: Callable[[Any], None]) -> Doctor:
    """A doctor applying `change` to the answers of paths containing `part`, leaving others as they are."""

    def doctor(path: str, doc: Any) -> Any:
        if part in path:
            change(doc)
        return doc

    return doctor


def set_to(*keys: str | int, to: Any) -> Callable[[Any], None]:
    """A change setting the field at `keys` (object keys and list indexes) to `to`."""

    def change(doc: Any) -> None:
        for key in keys[:-1]:
            doc = doc[key]
        doc[keys[-1]] = to

    return change


def drop(*keys: str | int) -> Callable[[Any], None]:
    """A change leaving out the field at `keys`."""

    def change(doc: Any) -> None:
        for key in keys[:-1]:
            doc = doc[key]
        del doc[keys[-1]]

    return change
