"""Who drives the runtime: sync callers on their own thread, the driver thread otherwise.

A plain sync request runs on its caller's thread, which drives the shared
current-thread runtime meanwhile (no hand-off to a worker thread); while one
sync caller drives it, others hand their requests to the runtime and sleep
until they are done (one thread driving many requests batches their I/O). Async,
gevent and streamed work is spawned and driven by the driver thread while any
of it is alive. These tests guard what that must not break: sockets of
dropped, timed-out and closed connections are closed even when no request
follows, and sync and async callers progress together.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time

import loopfree
import pytest
from contexts_support import established_to_port, run_python, wait_until


def test_close_releases_idle_connections_without_another_request(server) -> None:
    client = loopfree.Client()
    assert client.get(server.url + "/").status_code == 200
    assert established_to_port(server.port) == 1
    client.close()
    assert wait_until(lambda: established_to_port(server.port) == 0, timeout=3)


def test_read_timeout_closes_its_connection_at_once(server) -> None:
    with loopfree.Client(timeout=loopfree.Timeout(5, read=0.2)) as client:
        with pytest.raises(loopfree.ReadTimeout):
            client.get(server.url + "/slow?delay=3")
        # Nothing else runs on the runtime now; the socket still closes.
        assert wait_until(lambda: established_to_port(server.port) == 0, timeout=2)


def test_sync_and_async_callers_progress_together(server) -> None:
    """
    One thread makes sync requests while a loop in another awaits slow ones:
    the slow ones finish while the sync ones are still going, so neither
    kind waited for the other to stop using the runtime.
    """
    client = loopfree.Client()
    async_client = loopfree.AsyncClient()
    async_statuses: list[int] = []
    async_done = threading.Event()

    def run_loop() -> None:
        async def main() -> None:
            responses = await asyncio.gather(
                *(async_client.get(server.url + "/slow?delay=0.3") for _ in range(20))
            )
            async_statuses.extend(r.status_code for r in responses)

        asyncio.run(main())
        async_done.set()

    thread = threading.Thread(target=run_loop)
    thread.start()
    sync_statuses = []
    finished_during_sync = False
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(sync_statuses) < 1000:
        sync_statuses.append(client.get(server.url + "/").status_code)
        if async_done.is_set():
            finished_during_sync = True
            break
    thread.join(10)
    assert set(sync_statuses) == {200}
    assert async_statuses == [200] * 20
    assert finished_during_sync
    client.close()
    asyncio.run(async_client.aclose())


def test_sync_callers_on_many_threads_share_the_runtime(server) -> None:
    client = loopfree.Client()
    results: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(50):
            status = client.get(server.url + "/").status_code
            with lock:
                results.append(status)

    threads = [threading.Thread(target=work) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [200] * 800
    client.close()


def test_sync_requests_made_while_another_thread_drives(server, bytes_pattern) -> None:
    """
    Requests made while another sync caller drives the runtime are handed to
    it: their results, large bodies and errors are those of the caller's own
    path.
    """
    client = loopfree.Client(timeout=loopfree.Timeout(5, read=0.3))
    slow_done = threading.Event()

    def slow() -> None:
        assert client.get(server.url + "/slow?delay=1.5", timeout=5).status_code == 200
        slow_done.set()

    driving = threading.Thread(target=slow)
    driving.start()
    time.sleep(0.2)  # the slow request is out, its thread driving the runtime
    n = 3 * 1024 * 1024 + 17
    for _ in range(3):
        body = client.get(server.url + f"/bytes?n={n}").content
        assert body == (bytes_pattern * (n // len(bytes_pattern) + 1))[:n]
    with pytest.raises(loopfree.ReadTimeout):
        client.get(server.url + "/slow?delay=2")
    assert not slow_done.is_set()  # all of it happened while the other drove
    driving.join(10)
    assert slow_done.is_set()
    client.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_idle_connection_closed_by_the_server_is_not_reused(mode: str) -> None:
    """
    Between two sync requests nobody drives the runtime, so the server's FIN
    on the idle connection is only seen when the next request starts: that
    request must go out on a new connection, not fail on the dead one.
    """
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[int] = []

    def serve() -> None:
        listener.settimeout(10)
        for _ in range(2):
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(1)
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(4096)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                time.sleep(0.1)  # then close: an idle keep-alive timeout

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
    if mode == "sync":
        with loopfree.Client() as client:
            assert client.get(url).text == "ok"
            time.sleep(0.5)
            assert client.get(url).text == "ok"
    else:

        async def main() -> None:
            async with loopfree.AsyncClient() as client:
                assert (await client.get(url)).text == "ok"
                await asyncio.sleep(0.5)
                assert (await client.get(url)).text == "ok"

        asyncio.run(main())
    thread.join(5)
    listener.close()
    assert len(accepted) == 2


WORKER_THREADS_DRIVER = """
import asyncio, threading
import loopfree

url = _sys.argv[1]
client = loopfree.Client()
async_client = loopfree.AsyncClient()
statuses = [client.get(url).status_code]

def on_thread():
    for _ in range(20):
        statuses.append(client.get(url).status_code)

threads = [threading.Thread(target=on_thread) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

async def gather():
    responses = await asyncio.gather(*(async_client.get(url) for _ in range(50)))
    return [r.status_code for r in responses]

# A new loop per call: the client belongs to neither.
statuses += asyncio.run(gather()) + asyncio.run(gather())
workers = sum(
    1
    for task in _os.listdir("/proc/self/task")
    if open(f"/proc/self/task/{task}/comm").read().strip() == "loopfree-worker"
)
client.close()
asyncio.run(async_client.aclose())
finish({"statuses": sorted(set(statuses)), "count": len(statuses), "workers": workers})
"""


@pytest.mark.parametrize(
    ("setting", "workers"),
    [(None, 1), ("1", 1), ("3", 3), ("0", 1), ("", 1), ("many", 1)],
)
def test_worker_threads_setting(server, setting: str | None, workers: int) -> None:
    """
    LOOPFREE_WORKER_THREADS=N (N > 1) runs requests on an N-thread runtime
    instead of the default current-thread one driven by its callers; sync,
    threaded and per-call-loop async requests all work either way, and a
    value that is not a positive integer keeps the default.
    """
    if setting is None and "LOOPFREE_WORKER_THREADS" in os.environ:
        pytest.skip("the default needs LOOPFREE_WORKER_THREADS unset in the test run")
    env = {} if setting is None else {"LOOPFREE_WORKER_THREADS": setting}
    done = run_python(WORKER_THREADS_DRIVER, server.url + "/", timeout=60, env=env)
    assert done.returncode == 0, done.describe()
    assert done.result == {"statuses": [200], "count": 261, "workers": workers}


SPIN_DRIVER = """
import loopfree

url = _sys.argv[1]
with loopfree.Client() as client:
    fast = [client.get(url + "/").status_code for _ in range(20)]
    # Slow answers switch the polling off; a fast one after them still works.
    slow = [client.get(url + "/slow?delay=0.05").status_code for _ in range(3)]
    fast += [client.get(url + "/").status_code for _ in range(10)]
finish({"fast": sorted(set(fast)), "count": len(fast), "slow": slow})
"""


@pytest.mark.parametrize("setting", [None, "0", "soon"])
def test_spin_setting(server, setting: str | None) -> None:
    """
    LOOPFREE_SPIN_US bounds how long a sync request polls before its thread
    sleeps (0: never polls); an unparsable value keeps the default. Requests
    to fast and slow endpoints complete either way.
    """
    if setting is None and "LOOPFREE_SPIN_US" in os.environ:
        pytest.skip("the default needs LOOPFREE_SPIN_US unset in the test run")
    env = {} if setting is None else {"LOOPFREE_SPIN_US": setting}
    done = run_python(SPIN_DRIVER, server.url, timeout=60, env=env)
    assert done.returncode == 0, done.describe()
    assert done.result == {"fast": [200], "count": 30, "slow": [200, 200, 200]}
