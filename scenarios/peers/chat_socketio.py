"""A minimal chat-room game on python-socketio: the peer Tierlab measures
next to its reference server.

Players `join` a room by name (acknowledged), `act` with a payload that
names the room (acknowledged), and every member of the room, the sender
included, receives `event` with the payload unchanged. Replicas share rooms
through one Redis (AsyncRedisManager, Redis Pub/Sub), as a team running
python-socketio behind a load balancer would. `/health` and `/ready`
answer for HAProxy and for the swarm's readiness check.

    python3 chat_socketio.py --port 9001 --redis redis://127.0.0.1:6379
"""

import argparse
import logging

import socketio
from aiohttp import web


def build(redis_url: str, ping_interval: float, ping_timeout: float) -> web.Application:
    manager = socketio.AsyncRedisManager(redis_url)
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        client_manager=manager,
        transports=["websocket"],
        cors_allowed_origins="*",
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
    )
    app = web.Application()
    sio.attach(app)

    @sio.event
    async def join(sid, room):
        if not isinstance(room, str) or not room:
            return {"ok": False, "error": "join takes a room name"}
        await sio.enter_room(sid, room)
        return {"ok": True}

    @sio.event
    async def act(sid, data):
        room = data.get("room") if isinstance(data, dict) else None
        if not isinstance(room, str) or room not in sio.rooms(sid):
            return {"ok": False, "error": "act names a room the player joined"}
        await sio.emit("event", data, room=room)
        return {"ok": True}

    async def health(_request):
        return web.json_response({"status": "ok"})

    app.router.add_get("/health", health)
    app.router.add_get("/ready", health)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379")
    parser.add_argument("--ping-interval", type=float, default=25.0, help="seconds")
    parser.add_argument("--ping-timeout", type=float, default=20.0, help="seconds")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    app = build(args.redis, args.ping_interval, args.ping_timeout)
    web.run_app(app, host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
