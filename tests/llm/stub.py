"""A local stub of an OpenAI-compatible endpoint for fault injection: it answers from a script."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted HTTP reply."""

    status: int = 200
    body: Any = None  # dict -> JSON, str -> raw text
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def completion(content: str | None, finish_reason: str = "stop", prompt_tokens: int = 11) -> Reply:
    """A chat completion answer."""
    body = {
        "id": "stub",
        "object": "chat.completion",
        "created": 0,
        "model": "stub",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 7, "total_tokens": prompt_tokens + 7},
    }
    return Reply(body=body)


def streamed(pieces: list[str], finish_reason: str = "stop", usage: bool = True) -> Reply:
    """A streamed chat completion (server-sent events): one chunk per piece, then the usage chunk."""
    base = {"id": "stub", "object": "chat.completion.chunk", "created": 0, "model": "stub"}
    chunks = [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": piece}, "finish_reason": None}]}
        for piece in pieces
    ]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish_reason}]})
    if usage:
        counts = {"prompt_tokens": 11, "completion_tokens": len(pieces), "total_tokens": 11 + len(pieces)}
        chunks.append({**base, "choices": [], "usage": counts})
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    return Reply(body=body, headers={"content-type": "text/event-stream"})


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    """An OpenAI-style error answer."""
    return Reply(status=status, body={"error": {"message": message, "type": "error"}}, headers=headers or {})


class StubLLM:
    """Serves scripted replies in order on ``port`` (0: a free one); records every request body.
    Unscripted requests get a 599."""

    def __init__(self, port: int = 0) -> None:
        self.script: list[Reply] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                stub.requests.append(json.loads(self.rfile.read(length) or b"{}"))
                stub.headers.append({k.lower(): v for k, v in self.headers.items()})
                reply = stub.script.pop(0) if stub.script else error(599, "stub: no scripted reply")
                if reply.delay:
                    time.sleep(reply.delay)
                data = (reply.body if isinstance(reply.body, str) else json.dumps(reply.body)).encode()
                try:
                    self.send_response(reply.status)
                    headers = {"content-type": "application/json", **reply.headers}
                    self.send_header("content-length", str(len(data)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def add(self, *replies: Reply) -> None:
        self.script.extend(replies)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    """A port nothing listens on (yet): an endpoint that refuses connections until a stub binds it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def crafter_env(i: int = 0, **overrides: Any) -> dict[str, Any]:
    """A valid, non-degenerate Crafter answer entry (distinct per ``i``)."""
    env: dict[str, Any] = {
        "name": f"Stone tools {i}",
        "purpose": "Practise collect_stone and make_stone_pickaxe with a wood pickaxe in hand.",
        "environment_settings": {
            "target_biome": "natural",
            "tree_rarity": None,
            "coal_rarity": "common",
            "iron_rarity": None,
            "diamond_rarity": None,
            "spawn_cows": i % 10,
            "spawn_zombies": 0,
            "spawn_skeletons": 0,
            "peaceful_mode": False,
            "place_table": True,
            "place_furnace": False,
            "place_plant": False,
        },
        "inventory_settings": {
            "sapling": 0,
            "wood": 2,
            "stone": 0,
            "coal": 0,
            "iron": 0,
            "diamond": 0,
            "wood_pickaxe": 1,
            "stone_pickaxe": 0,
            "iron_pickaxe": 0,
            "wood_sword": 0,
            "stone_sword": 0,
            "iron_sword": 0,
        },
    }
    env.update(overrides)
    return env


def crafter_answer(n: int, envs: list[dict[str, Any]] | None = None) -> str:
    """A valid answer with ``n`` distinct environments (JSON text)."""
    return json.dumps({"environments": envs if envs is not None else [crafter_env(i) for i in range(n)]})


def heist_answer(n: int) -> str:
    """A valid Heist answer with ``n`` distinct environments."""
    levels = [("easy", 7, 1), ("easy", 9, 2), ("hard", 11, 3), ("hard", None, None)]
    envs = [
        {
            "name": f"Maze {i}",
            "purpose": "Navigate the maze, collect the keys and steal the gem.",
            "distribution_mode": mode,
            "maze_size": maze,
            "num_keys": keys,
        }
        for i, (mode, maze, keys) in enumerate(levels[k % len(levels)] for k in range(n))
    ]
    return json.dumps({"environments": envs})
