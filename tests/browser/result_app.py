#!/usr/bin/python3
"""An app for the browser tests (issue 14) whose results carry what a page
must show safely: HTML and line breaks in text_output, URLs of each kind
(https image and audio, this site's /uploads/, plain http, javascript:), and
nested JSON. It registers for --space on --host and answers every request at
once with that result; it prints "Registration successful" when ready.
"""
import argparse
import sys
import time

import socketio

RESULT = {
    "text_output": "<img src=x onerror=\"window.__pwned=1\">line one\nline two\n<b>bold?</b>",
    "image_url": "https://example.invalid/picture.png",
    "audio_url": "https://example.invalid/speech.wav",
    "upload_image": "/uploads/abc/picture.png",
    "plain_link": "http://example.invalid/page",
    "bad_link": "javascript:window.__pwned=1",
    "html_field": "<script>window.__pwned=1</script>",
    "scores": {"a": 1, "b": [1, 2]},
    "model_used": "result-app-1",
    "processing_time_seconds": 0.25,
    "tokens_used": 7,
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", required=True)
    p.add_argument("--space", required=True)
    a = p.parse_args()
    sio = socketio.Client(reconnection=False)

    @sio.on("connect")
    def on_connect():
        sio.emit("register", {"space_name": a.space})

    @sio.on("register_response")
    def on_register(data):
        ok = isinstance(data, dict) and data.get("success")
        print("Registration successful" if ok else "Registration failed: %r" % (data,), flush=True)
        if not ok:
            sio.disconnect()

    @sio.on("inference_request")
    def on_request(data):
        sio.emit("inference_result", {"request_id": data["request_id"], "status": "completed",
                                      "result": RESULT})
        print("answered %s" % data["request_id"], flush=True)

    sio.connect(a.host, transports=["websocket"], wait_timeout=10)
    try:
        sio.wait()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        time.sleep(0)
        sys.exit(0)
