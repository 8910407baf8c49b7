"""A reviewer over WSS that verifies the gateway's certificate (tests/tls.rs).

Connects to AIRLOCK_URL (wss://…/ws) trusting only AIRLOCK_CA, with the token in an
Authorization header (and Origin: AIRLOCK_ORIGIN, as a browser page would, when set); prints
one JSON line per frame and READY after the snapshot; with AIRLOCK_UNTIL=snapshot exits then,
else approves the first request it is shown and exits after the ack. Every wait is bounded.
"""

import asyncio
import json
import os
import ssl
import sys

from websockets.asyncio.client import connect


async def main() -> int:
    ctx = ssl.create_default_context(cafile=os.environ["AIRLOCK_CA"])
    headers = {"Authorization": "Bearer " + os.environ["AIRLOCK_TOKEN"]}
    async with connect(
        os.environ["AIRLOCK_URL"], ssl=ctx, additional_headers=headers, open_timeout=10,
        origin=os.environ.get("AIRLOCK_ORIGIN"),
    ) as ws:
        tls = ws.transport.get_extra_info("ssl_object")
        print(json.dumps({"type": "tls", "version": tls.version(),
                          "peer": tls.getpeercert().get("subjectAltName")}), flush=True)
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
            print(json.dumps(frame), flush=True)
            if frame["type"] == "snapshot":
                print("READY", flush=True)
                if os.environ.get("AIRLOCK_UNTIL") == "snapshot":
                    return 0
            elif frame["type"] == "request":
                await ws.send(json.dumps(
                    {"type": "decide", "id": frame["id"], "decision": "approve"}))
            elif frame["type"] == "ack":
                return 0
            elif frame["type"] == "error":
                return 1


if __name__ == "__main__":
    sys.exit(asyncio.run(asyncio.wait_for(main(), 60)))
