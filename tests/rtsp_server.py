"""A real RTSP server for the live-stream tests (GStreamer's gst-rtsp-server).

Run with the system Python that has PyGObject (Debian: python3-gi gir1.2-gst-rtsp-server-1.0
gstreamer1.0-plugins-{base,good,bad}):

    /usr/bin/python3 tests/rtsp_server.py --port 8554 cam0=clip.mp4 [cam1=other.mp4 ...]

Each H.264 mp4 is served in real time at rtsp://127.0.0.1:PORT/NAME, once (no looping),
shared by all clients. It prints "ready" once listening. Served files must be
single-slice H.264, or the first key frame arrives damaged.
"""

import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8554)
    parser.add_argument("mounts", nargs="+", help="NAME=FILE.mp4 (H.264)")
    args = parser.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    for item in args.mounts:
        name, _, path = item.partition("=")
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(f'( filesrc location="{path}" ! qtdemux ! h264parse '
                           'config-interval=-1 ! rtph264pay name=pay0 pt=96 )')
        factory.set_shared(True)
        server.get_mount_points().add_factory(f"/{name}", factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        return 1
    print("ready", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
