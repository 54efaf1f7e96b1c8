"""The FastAPI baseline for bench/run_http.sh: a fastText model behind KServe V2 JSON.

What a team would write without Shoal: FastAPI + pydantic request models + the fasttext Python
binding, run by uvicorn with several worker processes. It answers the same V2 shape Shoal does:

  POST /v2/models/{tenant}/{model}/infer
  {"inputs":[{"name":"text","shape":[B],"datatype":"BYTES","data":["..."]}],"parameters":{"top_k":K}}
  -> {"model_name":"bench/intents","model_version":"1",
      "outputs":[{"name":"labels","datatype":"BYTES","shape":[B,K],"data":[...]},
                 {"name":"scores","datatype":"FP32","shape":[B,K],"data":[...]}]}

Environment:
  BENCH_MODEL          path of the fastText .bin/.ftz model (required)
  BENCH_MODEL_NAME     the tenant/model id it is served as (default bench/intents)
  BENCH_MODEL_VERSION  the version string in answers (default 1)

Run:   BENCH_MODEL=m.bin python3 -m uvicorn bench.fastapi_server:app --app-dir REPO --workers 2
Also:  BENCH_MODEL=m.bin python3 bench/fastapi_server.py --render "some text" [--top-k K]
       prints the JSON answer for one text without a server (run_http.sh uses it for nginx's reply).
"""

import json
import os
import sys
from typing import List, Optional

import fasttext
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, conint

# uvicorn --workers N binds the listening socket itself with proto 0; accepted sockets inherit it and
# asyncio then skips TCP_NODELAY (it checks proto == IPPROTO_TCP), so each keep-alive response waits
# ~40ms on the client's delayed ACK (uvicorn issue Kludex/uvicorn#3149; --workers 1 is unaffected).
# That would measure a bug, not FastAPI: set TCP_NODELAY on every TCP socket as asyncio means to.
# BENCH_TCP_NODELAY=0 keeps the stock behaviour.
if os.environ.get("BENCH_TCP_NODELAY", "1") != "0":
    import asyncio.base_events
    import socket

    def _set_nodelay(sock):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    asyncio.base_events._set_nodelay = _set_nodelay

# fasttext 0.9.2 prints a deprecation warning on every load_model; keep logs quiet.
fasttext.FastText.eprint = lambda *args, **kwargs: None

LABEL_PREFIX = "__label__"
MAX_TOP_K = 1000
MAX_BATCH = 1024

MODEL_PATH = os.environ.get("BENCH_MODEL", "")
MODEL_NAME = os.environ.get("BENCH_MODEL_NAME", "bench/intents")
MODEL_VERSION = os.environ.get("BENCH_MODEL_VERSION", "1")

if not MODEL_PATH:
    sys.exit("fastapi_server: set BENCH_MODEL to the path of a fastText model")
model = fasttext.load_model(MODEL_PATH)


# ---- V2 request models ---------------------------------------------------------------------------

class InferInput(BaseModel):
    name: str
    shape: List[int]
    datatype: str
    data: List[str]


class InferParameters(BaseModel):
    top_k: conint(ge=1, le=MAX_TOP_K) = 1


class InferRequest(BaseModel):
    id: Optional[str] = None
    inputs: List[InferInput]
    parameters: Optional[InferParameters] = None


# ---- prediction ----------------------------------------------------------------------------------

def predict(texts: List[str], top_k: int) -> dict:
    """The V2 answer for a batch: K is top_k clamped to the shortest row, labels without __label__."""
    # fastText's predict refuses newlines; it treats them as the end of a line anyway.
    clean = [t.replace("\n", " ") for t in texts]
    labels, scores = model.predict(clean, k=top_k)
    k = min([top_k] + [len(row) for row in labels])
    out_labels = []
    out_scores = []
    for row_labels, row_scores in zip(labels, scores):
        for label, score in zip(row_labels[:k], row_scores[:k].tolist()):
            out_labels.append(label[len(LABEL_PREFIX):] if label.startswith(LABEL_PREFIX) else label)
            out_scores.append(score)
    shape = [len(texts), k]
    return {
        "model_name": MODEL_NAME,
        "model_version": MODEL_VERSION,
        "outputs": [
            {"name": "labels", "datatype": "BYTES", "shape": shape, "data": out_labels},
            {"name": "scores", "datatype": "FP32", "shape": shape, "data": out_scores},
        ],
    }


def render(answer: dict) -> str:
    # The same bytes Starlette's JSONResponse sends.
    return json.dumps(answer, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))


# ---- HTTP ----------------------------------------------------------------------------------------

app = FastAPI(title="fastText V2 baseline", docs_url=None, redoc_url=None, openapi_url=None)


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": message})


@app.get("/v2/health/live")
async def live():
    return {"live": True}


@app.get("/v2/health/ready")
async def ready():
    return {"ready": True}


@app.post("/v2/models/{tenant}/{name}/infer")
async def infer(tenant: str, name: str, req: InferRequest):
    if f"{tenant}/{name}" != MODEL_NAME:
        return error(404, f"model '{tenant}/{name}' not found: this server has {MODEL_NAME}")
    if len(req.inputs) != 1:
        return error(400, "give exactly one input named text")
    inp = req.inputs[0]
    if inp.name != "text":
        return error(400, f"unknown input '{inp.name}': this model's only input is named text")
    if inp.datatype != "BYTES":
        return error(400, f"inputs[0].datatype is '{inp.datatype}': texts are BYTES")
    if not inp.data:
        return error(400, "inputs[0].data is empty: give at least one text")
    if len(inp.data) > MAX_BATCH:
        return error(400, f"a batch of {len(inp.data)} texts is over the limit of {MAX_BATCH}")
    if not inp.shape or len(inp.shape) > 2 or inp.shape[0] != len(inp.data) or \
            (len(inp.shape) == 2 and inp.shape[1] != 1):
        return error(400, f"inputs[0].shape {inp.shape} does not match the {len(inp.data)} texts")
    top_k = req.parameters.top_k if req.parameters else 1
    answer = predict(inp.data, top_k)
    if req.id is not None:
        answer = {"model_name": answer["model_name"], "model_version": answer["model_version"],
                  "id": req.id, "outputs": answer["outputs"]}
    return answer


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="print the V2 answer for one text (no server)")
    ap.add_argument("--render", metavar="TEXT", required=True)
    ap.add_argument("--top-k", type=int, default=1)
    a = ap.parse_args()
    print(render(predict([a.render], a.top_k)))
