"""The local Slack peer's files API: the three steps slack_sdk's `files_upload_v2` takes.

    files.getUploadURLExternal  {filename, length}     -> {upload_url, file_id}
    POST <upload_url>           the raw bytes          -> 200 "OK - <length>"
    files.completeUploadExternal {files: [{id, title}], channel_id?, thread_ts?, initial_comment?}
                                                       -> {files: [...]}, and a file share in the channel

As Slack does, an upload whose byte count differs from `length`, a completion naming a file that
was never uploaded, or a share in a channel the bot is not in (`not_in_channel`), is refused.
"""

from __future__ import annotations

import copy
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from rehearsal.slack.state import Json, SlackError, Workspace

MAX_BYTES = 10 * 1024 * 1024


@dataclass
class StoredFile:
    id: str
    filename: str
    length: int
    title: str = ""
    alt_txt: str = ""
    data: bytes | None = None
    channels: list[str] = field(default_factory=list)
    thread_ts: str | None = None


class FileStore:
    def __init__(self, workspace: Workspace, upload_base: Callable[[], str]) -> None:
        self._workspace = workspace
        self._upload_base = upload_base
        self._lock = threading.Lock()
        self._files: dict[str, StoredFile] = {}

    def get(self, file_id: str) -> StoredFile | None:
        with self._lock:
            found = self._files.get(file_id)
            return copy.deepcopy(found) if found else None

    def shared_in(self, channel: str) -> list[StoredFile]:
        with self._lock:
            return [copy.deepcopy(f) for f in self._files.values() if channel in f.channels]

    def get_upload_url(self, args: Json) -> Json:
        filename = args.get("filename")
        try:
            length = int(args.get("length", ""))
        except ValueError:
            raise SlackError("invalid_arguments") from None
        if not isinstance(filename, str) or not filename or not 0 < length <= MAX_BYTES:
            raise SlackError("invalid_arguments")
        file_id = "F" + secrets.token_hex(5).upper()
        with self._lock:
            self._files[file_id] = StoredFile(file_id, filename, length, alt_txt=str(args.get("alt_txt") or ""))
        return {"upload_url": f"{self._upload_base()}/upload/{file_id}", "file_id": file_id}

    def receive(self, file_id: str, data: bytes) -> tuple[int, str]:
        """The upload step: (HTTP status, body) as files.slack.com answers it."""
        with self._lock:
            stored = self._files.get(file_id)
            if stored is None:
                return 404, "file not found"
            if len(data) != stored.length:
                return 400, f"expected {stored.length} bytes, got {len(data)}"
            stored.data = data
        return 200, f"OK - {len(data)}"

    def complete(self, args: Json) -> Json:
        files = _files_arg(args.get("files"))
        channel = args.get("channel_id") or None
        thread_ts = args.get("thread_ts") or None
        done: list[Json] = []
        if channel:  # sharing needs membership; chat:write.public covers posts only
            self._workspace.channels.can_share(str(channel))
        with self._lock:
            for entry in files:
                stored = self._files.get(str(entry.get("id") or ""))
                if stored is None or stored.data is None:
                    raise SlackError("file_not_found")
                stored.title = str(entry.get("title") or stored.filename)
                if channel:
                    stored.channels.append(str(channel))
                    stored.thread_ts = str(thread_ts) if thread_ts else None
                done.append(_public(stored))
        if channel:
            self._workspace.share_files(
                str(channel),
                done,
                text=str(args.get("initial_comment") or ""),
                thread_ts=str(thread_ts) if thread_ts else None,
            )
        return {"files": done}


def _files_arg(value: object) -> list[Json]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise SlackError("invalid_arguments") from None
    if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
        raise SlackError("invalid_arguments")
    return list(value)


def _public(stored: StoredFile) -> Json:
    mimetype = "image/png" if stored.filename.lower().endswith(".png") else "application/octet-stream"
    return {
        "id": stored.id,
        "name": stored.filename,
        "title": stored.title,
        "mimetype": mimetype,
        "size": stored.length,
        "alt_txt": stored.alt_txt,
        "channels": list(stored.channels),
        "permalink": f"https://local.slack.com/files/{stored.id}/{stored.filename}",
    }
