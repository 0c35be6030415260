"""The dossier's class pages: the class-page notebook executed once per class on a few kernels
that each execute many pages, and each executed notebook exported to HTML.

A kernel per page would start Python and import torch, matplotlib and the analysis package again
for every class. Here a :class:`PagePool` starts one kernel per CPU core (at most
:data:`MAX_KERNELS`, no more than there are pages), which import the pages' library while the
dossier measures the run, and then take the pages in turn; each kernel has one nbconvert exporter.
Before each page after the first, a kernel's namespace is emptied (:data:`RESET`): modules stay
imported, no variable of one page reaches the next. A page that fails may leave its kernel busy (a
cell that timed out) or dead, so that kernel is replaced before its next page. The pages open the
run from the dossier's saved passes (the notebook's ``SAVED_RUN``), so no page repeats the
inspection pass or an attribution already made.

    with PagePool(template, staging, "demo", parameters, pages=len(names), kernels=2) as pool:
        for name in names:
            ...                                      # the kernels start, import and take pages meanwhile
            pool.put(name)
        pages, failed = pool.wait()
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: The names of the page kernels' threads, and the loggers that say nothing from them once their pool
#: is stopped (papermill's says its kernel died; jupyter_client's and this module's follow).
THREAD_PREFIX = "dossier-page-kernel-"
QUIET_WHEN_STOPPED = ("papermill", "traitlets", __name__)
#: Seconds allowed for the kernel to start and to empty its namespace.
STARTUP_TIMEOUT = 60
#: At most this many page kernels run at once (:func:`default_kernels`).
MAX_KERNELS = 4
#: Deletes every name the pages defined: those IPython does not hide (what ``%who`` lists), leaving
#: no name behind itself. Not ``%reset -f``: its ``gc.collect()`` over torch and matplotlib's objects
#: costs about half a second a page, and the output cache it also clears holds no name a page reads.
RESET = ("(lambda ip: [ip.user_ns.pop(n) for n in [n for n in ip.user_ns if n not in ip.user_ns_hidden]])"
         "(get_ipython())")
#: What the kernel imports while the dossier measures the run (:meth:`PageKernel.warm_up`): the
#: pages' library, its inline figures and what opening a run imports (``open_run`` imports the model
#: registry and the run's data loader where it is called), so that the first page waits for none.
WARM_UP = ("%matplotlib inline\nimport analysis.internals.run, analysis.internals.saved_run, analysis.report.class_page, "
           "tdrag.models.registry, tdrag.train.data")


@contextlib.contextmanager
def timed(timings: dict[str, float] | None, stage: str) -> Iterator[None]:
    """Add the seconds the body takes to ``timings[stage]`` (nothing when ``timings`` is None)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        if timings is not None:
            timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start


def page_name(class_name: str) -> str:
    """A safe file stem for a class name."""
    keep = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in class_name)
    return keep or "class"


def failure_text(exc: BaseException) -> str:
    """One line (at most 300 characters) saying why a page failed: the notebook's error when it has one."""
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    text = f"{ename}: {evalue}" if ename else f"{type(exc).__name__}: {exc}"
    return " ".join(str(text).split())[:300]


def quiet_kernel_manager_class():
    """nbclient's kernel manager, starting kernels with their stdout and stderr closed, and keeping
    the clients papermill opens on it (one per page) so that they can be closed after the page.

    A kernel writes its own lines there, not the notebook's (those travel over ZMQ into the page):
    a warning about its transport on every start and, when Ctrl-C stops the build, a traceback
    from its message handler. Left on the command's stderr they would bury its one line.
    """
    from jupyter_client import AsyncKernelManager

    class QuietKernelManager(AsyncKernelManager):
        def __init__(self, **kw: Any) -> None:
            super().__init__(**kw)
            self.page_clients: list = []

        async def start_kernel(self, **kw: Any) -> None:
            kw.setdefault("stdout", subprocess.DEVNULL)  # Popen arguments, passed down to the launch
            kw.setdefault("stderr", subprocess.DEVNULL)
            await super().start_kernel(**kw)

        def client(self, **kw: Any):
            kc = super().client(**kw)
            self.page_clients.append(kc)
            return kc

        def close_page_clients(self) -> None:
            while self.page_clients:
                self.page_clients.pop().stop_channels()

    return QuietKernelManager


class PageKernel:
    """One Jupyter kernel that executes class pages in turn (see the module docstring).

    Args:
        kernel_name: the Jupyter kernel ("python3").
        cwd: the kernel's working folder (the notebook's, so its relative paths mean what they say).
        timings: seconds per stage ("kernel start", "kernel reset") are added here when given.
    """

    def __init__(self, kernel_name: str = "python3", cwd: str | Path | None = None,
                 timings: dict[str, float] | None = None) -> None:
        self.kernel_name = kernel_name
        self.cwd = str(cwd) if cwd is not None else None
        self.timings = timings
        self.km = None
        self._control = None  # a blocking client that empties the namespace between pages
        self._used = False  # whether a page ran since the kernel started

    def __enter__(self) -> PageKernel:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    def start(self) -> None:
        from jupyter_core.utils import run_sync

        with timed(self.timings, "kernel start"):
            self.km = quiet_kernel_manager_class()(kernel_name=self.kernel_name)
            run_sync(self.km.start_kernel)(cwd=self.cwd)
            self._control = self.km.blocking_client()
            # The shell channel only: a subscriber to IOPub would queue every output of every page.
            # Requests sent before the kernel is up wait in ZMQ's queue; the pages' client waits for it.
            self._control.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
        self._used = False

    def warm_up(self, code: str = WARM_UP) -> None:
        """Start executing ``code`` (imports) in the kernel and return at once: the kernel works while
        the caller does; the next page waits for it (its names are emptied, its modules stay)."""
        self._control.execute(code, silent=True, store_history=False)
        self._used = True

    def kill(self) -> None:
        """Kill the kernel's process now, from any thread (a page running there stops: papermill then
        sees a dead kernel); :meth:`shutdown` still cleans up after."""
        import signal

        km = self.km
        pid = getattr(getattr(km, "provisioner", None), "pid", None)
        if pid:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    def shutdown(self) -> None:
        from jupyter_core.utils import run_sync

        if self.km is None:
            return
        try:
            self.km.close_page_clients()
            if self._control is not None:
                self._control.stop_channels()
            run_sync(self.km.shutdown_kernel)(now=True)
        except Exception as exc:  # noqa: BLE001 -- a kernel that cannot be stopped must not hide the build's result
            log.warning("dossier: the page kernel did not shut down cleanly: %s", exc)
        finally:
            self.km = self._control = None

    def reset(self) -> None:
        """Empty the kernel's namespace (modules stay imported); a kernel that cannot is replaced."""
        with timed(self.timings, "kernel reset"):
            try:
                reply = self._control.execute(RESET, silent=True, store_history=False, reply=True,
                                              timeout=STARTUP_TIMEOUT)
                emptied = reply["content"].get("status") == "ok"
            except Exception:  # noqa: BLE001 -- no answer in time (queue.Empty, TimeoutError): replace it
                emptied = False
        if not emptied:
            self.shutdown()
            self.start()

    def execute(self, template: Path, executed: Path, parameters: dict[str, Any], timeout: int) -> None:
        """Execute ``template`` with ``parameters`` into ``executed`` (papermill, on this kernel).

        Raises what papermill raises for a failing page (``PapermillExecutionError`` with the
        notebook's ``ename`` / ``evalue``); the executed notebook is written either way.
        """
        import papermill

        try:
            if self.km is None:
                self.start()
            elif self._used:
                self.reset()
            self._used = True
            papermill.execute_notebook(str(template), str(executed), parameters=parameters,
                                       kernel_name=self.kernel_name, language="python", progress_bar=False,
                                       execution_timeout=timeout, log_output=False, km=self.km,
                                       request_save_on_cell_execute=False)
        except Exception:
            # A cell may still be running (a timeout) or the kernel may be dead: the next page starts a new one.
            self.shutdown()
            raise
        finally:
            if self.km is not None:
                self.km.close_page_clients()


def html_exporter():
    """An nbconvert exporter for the pages: outputs and prose, code cells and prompts hidden. Each
    page kernel's thread makes one and exports all its pages with it (its templates read once)."""
    from nbconvert import HTMLExporter

    return HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)


def export_html(notebook_path: Path, html_path: Path, title: str, exporter=None) -> Path:
    """The executed notebook as a standalone HTML page (``exporter``: one of :func:`html_exporter`'s,
    made here when not given)."""
    import nbformat

    nb = nbformat.read(notebook_path, as_version=4)
    nb.metadata["title"] = title
    body, _ = (exporter or html_exporter()).from_notebook_node(nb)
    html_path.write_text(body, encoding="utf-8")
    return html_path


class PagePool:
    """The class pages executed on ``kernels`` kernels at once, one thread each (a :class:`PageKernel`
    per thread, made, used and shut down there), each with its own exporter.

    The kernels start, and import the pages' library, as soon as the pool is entered; a page starts
    when :meth:`put` gives it (its input ready: the dossier saves each class's maps, then puts its
    page), so the caller keeps working meanwhile. :meth:`wait` waits for every page given.

        with PagePool(template, staging, "demo", parameters, pages=len(names), kernels=2) as pool:
            for name in names:
                ...                               # the kernels start and take pages meanwhile
                pool.put(name)
            pages, failed = pool.wait()

    Leaving the pool early (an error, Ctrl-C) kills the kernels: a page running there stops at once.

    Args:
        template: the class-page notebook; staging: the dossier's folder (``notebooks/`` in it).
        run_name: the run, in the pages' titles.
        parameters: the notebook's parameters (each page adds its ``CLASS_NAME``).
        pages: how many pages will be given (the progress bar's length).
        kernels: kernels at once; kernel_name, timeout (seconds per cell): of every page.
    """

    def __init__(self, template: Path, staging: Path, run_name: str, parameters: dict[str, Any], pages: int,
                 kernels: int = 1, kernel_name: str = "python3", timeout: int = 1200, progress: bool = True,
                 threads: int | None = None) -> None:
        self.template, self.staging, self.run_name = Path(template), Path(staging), run_name
        self.threads = threads  # torch threads in each kernel (None: torch's default)
        self.parameters = dict(parameters)
        self.kernel_name, self.timeout = kernel_name, timeout
        self.count = max(1, int(kernels))
        self.pages: dict[str, str] = {}
        self.failed: dict[str, str] = {}
        self.timings: dict[str, float] = {}  # summed over the kernels (their seconds, not the wall's)
        self._total, self._progress = pages, progress
        self._lock = threading.Lock()
        self._queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._kernels: list[PageKernel] = []
        self._threads: list[threading.Thread] = []
        self._names: list[str] = []
        self._ended = False  # whether the end marks are queued
        self._bar = None
        self._start_error = "no page kernel could start"  # what wait() says of pages no kernel took

    def __enter__(self) -> PagePool:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=self._total, desc="dossier", unit="class", disable=not self._progress)
        for name in QUIET_WHEN_STOPPED:
            logging.getLogger(name).addFilter(self._quiet)
        for k in range(self.count):
            thread = threading.Thread(target=self._work, name=f"{THREAD_PREFIX}{k}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, exc_type, *exc: Any) -> None:
        if exc_type is not None:  # a page left running would hold its thread (and this exit) for its whole run
            self._stop.set()
            with self._lock:
                for kernel in self._kernels:
                    kernel.kill()
        self._end()
        for thread in self._threads:
            thread.join()
        self._bar.close()
        for name in QUIET_WHEN_STOPPED:
            logging.getLogger(name).removeFilter(self._quiet)

    def _quiet(self, record: logging.LogRecord) -> bool:
        """A logging filter: nothing from the kernels' threads once the pool is stopped (their pages
        fail because their kernels were killed: no news after an error or Ctrl-C)."""
        return not (self._stop.is_set() and record.threadName.startswith(THREAD_PREFIX))

    def put(self, name: str) -> None:
        """Execute the page of class ``name`` (on the first kernel free)."""
        self._names.append(name)
        self._queue.put(name)

    def wait(self) -> tuple[dict[str, str], dict[str, str]]:
        """Wait for every page given; ``(pages, failed)`` in the order given: class -> HTML file name,
        class -> one-line reason. A page no kernel could take (none would start) is failed with the
        kernels' error."""
        self._end()
        for thread in self._threads:
            thread.join()
        for name in self._names:
            if name not in self.pages and name not in self.failed:
                self.failed[name] = self._start_error
        order = {name: i for i, name in enumerate(self._names)}
        return (dict(sorted(self.pages.items(), key=lambda kv: order[kv[0]])),
                dict(sorted(self.failed.items(), key=lambda kv: order[kv[0]])))

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            for _ in self._threads:
                self._queue.put(None)  # one end mark per kernel

    def _work(self) -> None:
        timings: dict[str, float] = {}
        kernel = PageKernel(self.kernel_name, cwd=self.template.parent, timings=timings)
        with self._lock:
            self._kernels.append(kernel)
        try:
            kernel.start()
            kernel.warm_up(WARM_UP + (f"\nimport torch\ntorch.set_num_threads({int(self.threads)})"
                                      if self.threads else ""))
        except Exception as exc:  # noqa: BLE001 -- the other kernels go on; wait() names this error
            self._start_error = f"the page kernel did not start: {failure_text(exc)}"
            log.warning("dossier: %s", self._start_error)
            kernel.shutdown()
            return
        exporter = html_exporter()
        try:
            while (name := self._queue.get()) is not None and not self._stop.is_set():
                page, reason = self._page(kernel, exporter, name, timings)
                with self._lock:
                    if page:
                        self.pages[name] = page
                    if reason:
                        self.failed[name] = reason
                self._bar.update(1)
        finally:
            kernel.shutdown()
            with self._lock:
                for stage, seconds in timings.items():
                    self.timings[stage] = self.timings.get(stage, 0.0) + seconds

    def _page(self, kernel: PageKernel, exporter, name: str,
              timings: dict[str, float]) -> tuple[str | None, str | None]:
        """Execute and export one class page: ``(HTML file name or None, failure or None)``. A failed
        page is exported too, to read its error."""
        stem = page_name(name)
        executed = self.staging / "notebooks" / f"{stem}.ipynb"
        reason = page = None
        try:
            with timed(timings, "pages: execute"):
                kernel.execute(self.template, executed, {**self.parameters, "CLASS_NAME": name}, self.timeout)
        except Exception as exc:  # noqa: BLE001 -- one class's failure must not stop the others
            reason = failure_text(exc)
            log.warning("dossier: class %s failed: %s", name, reason)
        try:
            if executed.is_file():
                with timed(timings, "pages: export"):
                    export_html(executed, self.staging / f"{stem}.html", f"{name}: {self.run_name}", exporter)
                page = f"{stem}.html"
        except Exception as exc:  # noqa: BLE001 -- listed in the index like a failed page
            reason = reason or f"HTML export failed: {failure_text(exc)}"
        return page, reason


def usable_cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_kernels(pages: int) -> int:
    """Page kernels to run at once: one per CPU core this process may use, at most :data:`MAX_KERNELS`
    (each holds its own torch, matplotlib and run) and no more than there are pages."""
    return max(1, min(pages, usable_cores(), MAX_KERNELS))


def thread_share(kernels: int) -> int:
    """Torch threads for the build and for each of its ``kernels`` page kernels, so that together
    they use each core about once: torch's default (a thread per core in every process) made 2
    kernels and the build run 6 threads on 2 cores, and the demo dossier took 102 s instead of 64
    (benchmarks/RESULTS.md, "The dossier")."""
    return max(1, usable_cores() // (int(kernels) + 1))


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(threads)``, then give torch back its count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)
