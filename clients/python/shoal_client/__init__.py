"""Shoal's Python client: the ZeroMQ + protobuf API of a Shoal node, for chatbot backends.

    from shoal_client import Client, ShoalError

    with Client("127.0.0.1:7421", key=None, timeout=10.0) as shoal:
        shoal.push("acme/bot", "bot.bin")                  # a new version
        rows = shoal.infer("acme/bot", ["where is my parcel"], top_k=2)
        rows[0][0].label, rows[0][0].score                 # best label of the first text
        shoal.promote("acme/bot", 2)                       # production -> version 2
        shoal.rollback("acme/bot")                         # back to the previous version
        for m in shoal.cluster_status(): print(m.name, m.status, m.phi)

Every call raises ShoalError (its .code is the error's name, e.g. "NOT_FOUND",
"RESOURCE_EXHAUSTED", "UNAUTHENTICATED"; "TIMEOUT" when the node did not answer in time) or
returns the answer. The protobuf classes (shoal_pb2) are generated from proto/shoal.proto when
Shoal is built (build/clients/python/); the client needs Debian's python3-zmq and
python3-protobuf. One Client is one DEALER socket: use it from one thread at a time.
"""
import itertools
import os
from collections import namedtuple

import zmq

from . import shoal_pb2 as pb

__all__ = ["Client", "ShoalError", "Prediction", "Member"]

Prediction = namedtuple("Prediction", "label score")
Member = namedtuple("Member", "name status is_self phi http_address zmq_address "
                              "cluster_address snapshots_held")

class ShoalError(Exception):
    """A call the node refused or could not answer: .code (a name) and .message."""

    def __init__(self, code, message):
        super().__init__("%s: %s" % (code, message))
        self.code = code
        self.message = message


class Client:
    """A connection to one node's ZeroMQ port ("HOST:PORT", default $SHOAL_NODE or
    127.0.0.1:7421). `key`: the API key (default $SHOAL_KEY) for a node with a keys file.
    `timeout`: seconds to wait for each answer (pushes get at least 60)."""

    def __init__(self, node=None, key=None, timeout=10.0):
        node = node or os.environ.get("SHOAL_NODE") or "127.0.0.1:7421"
        if ":" not in node:
            raise ValueError("node must be HOST:PORT, got %r" % node)
        self.node = node
        self.key = key if key is not None else os.environ.get("SHOAL_KEY", "")
        self.timeout = float(timeout)
        self._ids = itertools.count(1)
        self._ctx = zmq.Context.instance()
        self._socket = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    # ---- calls ----

    def infer(self, model, texts, top_k=1, version=0, label=""):
        """Predicts each text; returns one list of Prediction (best first) per text."""
        if isinstance(texts, str):
            texts = [texts]
        req = pb.Request()
        req.infer.model = model
        req.infer.texts.extend(texts)
        req.infer.top_k = top_k
        req.infer.version = version
        req.infer.label = label
        r = self._call(req, "infer").infer
        return [[Prediction(p.label, p.score) for p in row.predictions] for row in r.rows]

    def push(self, model, data, label="", note="", timeout=None):
        """Uploads a model file (a path, or its bytes) as a new version of `model`; returns the
        PushResponse (version, sha256, labels, copies, replication_factor). Waits `timeout`
        seconds for the answer (default: the client's timeout, at least 60)."""
        if not isinstance(data, (bytes, bytearray)):
            with open(data, "rb") as f:
                data = f.read()
        req = pb.Request()
        req.push.model = model
        req.push.data = bytes(data)
        req.push.label = label
        req.push.note = note
        wait = timeout if timeout is not None else max(self.timeout, 60.0)
        return self._call(req, "push", timeout=wait).push

    def list(self, model):
        """A model's versions and labels (ModelInfo)."""
        req = pb.Request()
        req.list.model = model
        return self._call(req, "list").list

    def models(self):
        """Every model the key may see (a list of ModelInfo)."""
        req = pb.Request()
        req.models.SetInParent()
        return list(self._call(req, "models").models.models)

    def promote(self, model, version, label="production"):
        """Points `label` at `version`; returns the LabelResponse (label, from, to)."""
        return self._move_label(model, label, pb.LabelRequest.PROMOTE, version)

    def rollback(self, model, label="production", to=0):
        """Moves `label` back to its previous version (or to version `to`)."""
        return self._move_label(model, label, pb.LabelRequest.ROLLBACK, to)

    def status(self):
        """The node's name, version and counts (StatusResponse)."""
        req = pb.Request()
        req.status.SetInParent()
        return self._call(req, "status").status

    def cluster_status(self):
        """The cluster's members as this node sees them (a list of Member)."""
        req = pb.Request()
        req.cluster_status.SetInParent()
        r = self._call(req, "cluster_status").cluster_status
        return [Member(v.member.name, pb.Member.Status.Name(v.member.status).lower(),
                       v.is_self, v.phi, v.member.http_address, v.member.zmq_address,
                       v.member.cluster_address, v.snapshots_held) for v in r.members]

    # ---- wire ----

    def _move_label(self, model, label, action, version):
        req = pb.Request()
        req.label.model = model
        req.label.label = label
        req.label.action = action
        req.label.version = version
        return self._call(req, "label").label

    def _connect(self):
        if self._socket is None:
            s = self._ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.connect("tcp://" + self.node)
            self._socket = s
        return self._socket

    def _call(self, req, expect, timeout=None):
        req.request_id = next(self._ids)
        req.api_key = self.key
        s = self._connect()
        s.send_multipart([b"", req.SerializeToString()])
        deadline = timeout if timeout is not None else self.timeout
        while True:
            if not s.poll(int(deadline * 1000)):
                # The answer may still come: a fresh socket so it cannot be taken for the next.
                self.close()
                raise ShoalError("TIMEOUT", "no answer from %s within %g s (is the node up?)"
                                 % (self.node, deadline))
            frames = s.recv_multipart()
            resp = pb.Response()
            try:
                resp.ParseFromString(frames[-1])
            except Exception as e:  # a peer that is not a Shoal node
                raise ShoalError("INTERNAL", "unreadable answer from %s: %s" % (self.node, e))
            if resp.request_id != req.request_id:
                continue  # a late answer to an earlier call
            if resp.HasField("error") and resp.error.message:
                raise ShoalError(pb.Error.Code.Name(resp.error.code), resp.error.message)
            if resp.WhichOneof("result") != expect:
                raise ShoalError("INTERNAL", "expected a %s answer, got %s"
                                 % (expect, resp.WhichOneof("result")))
            return resp
