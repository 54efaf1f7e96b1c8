#!/usr/bin/env python3
"""Holds packets for a while before letting them go: tc netem's delay and jitter, in user space.

The fault harness needs delay, jitter and reordering on chosen links. tc netem does that in the
kernel, but kernels built without sch_netem (this project's CI machine is one) refuse it, so the
harness sends the packets of a degraded link to an NFQUEUE (`iptables ... -j NFQUEUE
--queue-num N`, built into most kernels) and this program, run in the same network namespace,
gives each packet its verdict `delay_ms` ± `jitter_ms` later. Packets whose delays cross leave in
the new order, as with netem's jitter. Loss and duplication need no program: iptables' statistic
match and TEE target do them.

usage: delayer.py QUEUE_NUM DELAY_MS [JITTER_MS] [SEED]
It binds the queue, prints "ready" on stdout, and runs until killed (SIGTERM or SIGKILL: the kernel
then drops what is still queued, as a link that goes away would).

Protocol: nfnetlink_queue over a NETLINK_NETFILTER socket (linux/netfilter/nfnetlink_queue.h):
a config message binds the queue and asks for packet metadata only; each queued packet arrives as
an NFQNL_MSG_PACKET whose NFQA_PACKET_HDR carries its id; an NFQNL_MSG_VERDICT with that id and
NF_ACCEPT releases it.
"""
import heapq
import random
import select
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN = 1, 2, 3
NFQA_PACKET_HDR, NFQA_VERDICT_HDR = 1, 2
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NF_ACCEPT = 1
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2


def attr(kind, payload):
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * ((4 - length % 4) % 4)


def message(kind, queue, attrs, flags=NLM_F_REQUEST, seq=0):
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue)) + b"".join(attrs)
    return struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | kind, flags, seq,
                       0) + body


def attrs_of(payload):
    """Yields (type, bytes) for each netlink attribute in `payload`."""
    at = 0
    while at + 4 <= len(payload):
        length, kind = struct.unpack_from("=HH", payload, at)
        if length < 4:
            return
        yield kind & 0x7FFF, payload[at + 4:at + length]
        at += (length + 3) & ~3


def configure(sock, queue):
    """Binds `queue` and asks for metadata only; raises on the kernel's refusal."""
    config = [
        message(NFQNL_MSG_CONFIG, queue, [attr(NFQA_CFG_CMD, struct.pack("=BBH", NFQNL_CFG_CMD_BIND,
                                                                         0, 0))],
                NLM_F_REQUEST | NLM_F_ACK, 1),
        message(NFQNL_MSG_CONFIG, queue, [attr(NFQA_CFG_PARAMS, struct.pack(">IB", 0,
                                                                            NFQNL_COPY_META))],
                NLM_F_REQUEST | NLM_F_ACK, 2),
        message(NFQNL_MSG_CONFIG, queue, [attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack(">I", 20000))],
                NLM_F_REQUEST | NLM_F_ACK, 3),
    ]
    for m in config:
        sock.send(m)
        reply = sock.recv(65536)
        _, kind, _, _, _ = struct.unpack_from("=IHHII", reply)
        if kind == NLMSG_ERROR:
            (err,) = struct.unpack_from("=i", reply, 16)
            if err != 0:
                raise OSError(-err, "nfnetlink_queue refused the configuration of queue %d" % queue)


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: delayer.py QUEUE_NUM DELAY_MS [JITTER_MS] [SEED]")
    queue = int(sys.argv[1])
    delay = float(sys.argv[2]) / 1000.0
    jitter = float(sys.argv[3]) / 1000.0 if len(sys.argv) > 3 else 0.0
    rng = random.Random(int(sys.argv[4]) if len(sys.argv) > 4 else 1)

    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind((0, 0))
    configure(sock, queue)
    print("ready", flush=True)

    held = []  # (release time, packet id), earliest first
    while True:
        now = time.monotonic()
        while held and held[0][0] <= now:
            _, packet = heapq.heappop(held)
            sock.send(message(NFQNL_MSG_VERDICT, queue,
                              [attr(NFQA_VERDICT_HDR, struct.pack(">II", NF_ACCEPT, packet))]))
        wait = max(0.0, held[0][0] - now) if held else 1.0
        ready, _, _ = select.select([sock], [], [], wait)
        if not ready:
            continue
        data = sock.recv(1 << 16)
        at = 0
        while at + 16 <= len(data):
            length, kind, _, _, _ = struct.unpack_from("=IHHII", data, at)
            if length < 16:
                break
            if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                for a, value in attrs_of(data[at + 20:at + length]):
                    if a == NFQA_PACKET_HDR:
                        (packet,) = struct.unpack_from(">I", value)
                        hold = max(0.0, delay + rng.uniform(-jitter, jitter))
                        heapq.heappush(held, (time.monotonic() + hold, packet))
            at += (length + 3) & ~3


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
