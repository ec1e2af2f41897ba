// A minimal chat-room game on Node's socket.io with @socket.io/redis-adapter:
// the same game as chat_socketio.py, for teams on Node. Players `join` a
// room by name (acknowledged), `act` with a payload that names the room
// (acknowledged), and every member of the room, the sender included,
// receives `event` with the payload unchanged. Replicas share rooms through
// one Redis (the adapter's Pub/Sub). `/health` and `/ready` answer for
// HAProxy.
//
//   npm install            # in this directory: socket.io, the adapter, redis
//   node chat_socketio.js --port 9001 --redis redis://127.0.0.1:6379
//
// docs/scenarios.md ("Node recipe") runs three of these behind HAProxy and
// points `tierlab run scenarios/socketio/chat-external.toml` at them.

"use strict";

const http = require("node:http");
const { parseArgs } = require("node:util");
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { createClient } = require("redis");

const { values: opts } = parseArgs({
  options: {
    port: { type: "string" },
    host: { type: "string", default: "127.0.0.1" },
    redis: { type: "string", default: "redis://127.0.0.1:6379" },
    "ping-interval": { type: "string", default: "25" },
    "ping-timeout": { type: "string", default: "20" },
  },
});
if (!opts.port) {
  console.error("usage: node chat_socketio.js --port PORT [--redis URL]");
  process.exit(2);
}

function health(req, res) {
  if (req.url === "/health" || req.url === "/ready") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end('{"status":"ok"}');
  } else {
    res.writeHead(404);
    res.end();
  }
}

async function main() {
  const pub = createClient({ url: opts.redis });
  const sub = pub.duplicate();
  pub.on("error", (e) => console.error("redis:", e.message));
  sub.on("error", (e) => console.error("redis:", e.message));
  await Promise.all([pub.connect(), sub.connect()]);

  const server = http.createServer(health);
  const io = new Server(server, {
    transports: ["websocket"],
    pingInterval: Number(opts["ping-interval"]) * 1000,
    pingTimeout: Number(opts["ping-timeout"]) * 1000,
    adapter: createAdapter(pub, sub),
  });

  io.on("connection", (socket) => {
    socket.on("join", (room, ack) => {
      const reply = typeof ack === "function" ? ack : () => {};
      if (typeof room !== "string" || room === "") {
        return reply({ ok: false, error: "join takes a room name" });
      }
      socket.join(room);
      reply({ ok: true });
    });
    socket.on("act", (data, ack) => {
      const reply = typeof ack === "function" ? ack : () => {};
      const room = data && data.room;
      if (typeof room !== "string" || !socket.rooms.has(room)) {
        return reply({ ok: false, error: "act names a room the player joined" });
      }
      io.to(room).emit("event", data);
      reply({ ok: true });
    });
  });

  server.listen(Number(opts.port), opts.host);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
