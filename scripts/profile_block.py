"""The server-profile block of docs/performance.md, from the `perf report`
outputs scripts/profile-server.sh leaves in its directory: self time by
binary, the kernel paths the replica spends under (children time), and the
symbols with the most self time. Prints the block; writes nothing else."""

import datetime
import os
import platform
import re
import socket
import sys

# Kernel entry points worth naming, and what they stand for in a replica.
PATHS = [
    ("__x64_sys_sendto", "sendto: frames written to clients and Redis (on loopback this runs the receiver's TCP receive path too)"),
    ("__netif_receive_skb_one_core", "of which the loopback receive path (the receiving socket's work, done in the sender's call)"),
    ("nf_hook_slow", "of which netfilter hooks (iptables/conntrack rules on the host)"),
    ("__x64_sys_write", "write"),
    ("__x64_sys_writev", "writev"),
    ("__x64_sys_recvfrom", "recvfrom: frames read from clients and Redis"),
    ("__x64_sys_read", "read"),
    ("__x64_sys_epoll_wait", "epoll_wait: the runtime waiting for sockets"),
    ("__x64_sys_futex", "futex: threads woken or parked"),
]


def rows(path, pattern):
    with open(path) as f:
        for line in f:
            m = re.match(pattern, line)
            if m:
                yield m.groups()


def machine():
    mem_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    os_name = platform.system()
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    os_name = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return f"`{socket.gethostname()}` ({os.cpu_count()} cores, {mem_kib / 1048576:.0f} GiB, {os_name}, kernel {platform.release()})"


def samples(out):
    try:
        text = open(os.path.join(out, "perf.log")).read()
    except OSError:
        return None
    m = re.search(r"\((\d+) samples\)", text)
    return int(m.group(1)) if m else None


def main():
    out, command, players, seconds = sys.argv[1:5]
    dsos = list(rows(os.path.join(out, "by-dso.txt"), r"^\s*([\d.]+)%\s+(\S+)"))
    children = {sym: float(total) for total, _self, _kind, sym in rows(
        os.path.join(out, "children.txt"), r"^\s*([\d.]+)%\s+([\d.]+)%\s+\[(.)\]\s+(\S+)")}
    selfs = list(rows(os.path.join(out, "self.txt"), r"^\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.+?)\s*$"))
    n = samples(out)
    date = datetime.date.today().isoformat()
    lines = [
        "<!-- figures:server-profile (written by scripts/profile-server.sh from perf's records of the command named below, which measures and writes it again) -->",
        f"Measured {date} on {machine()} by `{command}`: `perf record -g` (cpu-clock) on srv-1 for {seconds} s of the hold at {players} players"
        + (f", {n:,} samples." if n else "."),
        "",
        "| binary (self time) | share of srv-1's CPU |",
        "|---|---|",
    ]
    for pct, dso in dsos[:6]:
        lines.append(f"| `{dso}` | {float(pct):.1f} % |")
    lines += ["", "| kernel path (time spent under it) | share |", "|---|---|"]
    for sym, what in PATHS:
        if sym in children and children[sym] >= 0.5:
            lines.append(f"| `{sym}` — {what} | {children[sym]:.1f} % |")
    lines += ["", "| symbol (self time) | binary | share |", "|---|---|---|"]
    for pct, dso, _kind, sym in selfs[:15]:
        sym = sym if len(sym) <= 90 else sym[:87] + "..."
        lines.append(f"| `{sym}` | `{dso}` | {float(pct):.1f} % |")
    lines.append("<!-- /figures:server-profile -->")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
