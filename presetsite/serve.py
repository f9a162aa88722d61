"""The web server: daphne, then the event loop kept for requests it left running, so it exits.

Django runs a request's sync middleware in a worker thread that hands back to the event loop for
the async layers inside. When a client goes away mid-request, Django stops waiting for that
thread; if daphne stops just then, its loop stops under the thread, which waits for it forever,
and so does the interpreter, which joins worker threads at exit: the process hung until killed.
Here the loop goes on in a background thread while the interpreter joins its workers, so a
left-over request finishes (or fails) and the process exits.

Run it as daphne, with daphne's arguments: python -m presetsite.serve -p 8000 presetsite.asgi:application
"""

import asyncio
import sys
import threading

from daphne.cli import CommandLineInterface


def serve_left_over_requests(loop):
    """Run `loop` in a daemon thread: work that threads still schedule on it gets done, and the
    thread ends with the interpreter."""
    threading.Thread(target=loop.run_forever, name="left-over requests", daemon=True).start()


def main(argv):
    CommandLineInterface().run(argv)  # returns once daphne has stopped (SIGTERM, Ctrl-C)
    serve_left_over_requests(asyncio.get_event_loop_policy().get_event_loop())


if __name__ == "__main__":
    main(sys.argv[1:])
